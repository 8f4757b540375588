/*
 * harvbk.h - libharvbk: VM backup, snapshot and restore as an embeddable library.
 * Include this umbrella header; link with -lharvbk (pkg-config harvbk).
 */
#ifndef HARVBK_H
#define HARVBK_H

#include "harvbk/common.h"
#include "harvbk/context.h"
#include "harvbk/target.h"
#include "harvbk/key.h"
#include "harvbk/vm.h"
#include "harvbk/image.h"
#include "harvbk/operation.h"
#include "harvbk/backup.h"
#include "harvbk/restore.h"
#include "harvbk/snapshot.h"
#include "harvbk/quota.h"
#include "harvbk/schedule.h"
#include "harvbk/maintenance.h"

#endif
