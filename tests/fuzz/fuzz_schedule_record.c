/* fuzz_schedule_record - schedule records of the state directory,
 * schedules/<ns>/<name>.json (hb_sched_decode, state/schedule.h,
 * docs/SCHEDULES.md), with the edits the scheduler makes to a record it
 * read (history trim), encoded and decoded back to the same text. */
#include "fuzz.h"
#include "state/schedule.h"

static char *reencode(const char *text)
{
    hb_sched_rec r;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_sched_decode(text, strlen(text), &r, &e);
    if (rc)
        fprintf(stderr, "cannot read back %s: %s\n", text, e.msg);
    FUZZ_CHECK(rc == 0);
    char *t = hb_sched_encode(&r);
    FUZZ_CHECK(t != NULL);
    hb_sched_rec_clear(&r);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hb_sched_rec r;
    memset(&r, 0, sizeof r);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_sched_decode(data, size, &r, &e);
    if (rc) {
        FUZZ_CHECK(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT || rc == HARVBK_E_NOMEM);
        FUZZ_CHECK(e.code == rc && e.msg[0]);
        hb_sched_rec_clear(&r);
        return 0;
    }
    FUZZ_CHECK(r.ns && r.name && r.vm_ns && r.vm_name && r.cron);
    FUZZ_CHECK(r.nhist <= r.caphist || r.caphist == 0);
    for (size_t i = 0; i < r.nhist; i++) {
        FUZZ_CHECK(r.hist[i].entry && r.hist[i].error);
        FUZZ_CHECK(hb_sched_item_state_name(r.hist[i].state) != NULL);
    }
    char *t1 = hb_sched_encode(&r);
    FUZZ_CHECK(t1 != NULL);
    char *t2 = reencode(t1);
    FUZZ_CHECK(strcmp(t1, t2) == 0);
    /* what the scheduler does to a record it read: trim, push, write */
    hb_sched_rec_trim(&r);
    int idx = hb_sched_rec_push(&r, "fuzz-20260101-0000", r.last_planned, HB_SI_RUNNING, 0);
    FUZZ_CHECK(idx >= 0 || idx == HARVBK_E_NOMEM);
    if (idx >= 0)
        FUZZ_CHECK(hb_sched_item_set_error(&r.hist[idx], HARVBK_E_TARGET, "boom") == 0);
    char *t3 = hb_sched_encode(&r);
    FUZZ_CHECK(t3 != NULL);
    char *t4 = reencode(t3);
    FUZZ_CHECK(strcmp(t3, t4) == 0);
    hb_free(t1);
    hb_free(t2);
    hb_free(t3);
    hb_free(t4);
    hb_sched_rec_clear(&r);
    return 0;
}
