// Package harvbk is the Go binding of libharvbk, the embeddable VM backup,
// snapshot and restore library (cgo over libharvbk.so.1, found with
// pkg-config). See bindings/go/README.md.
//
//	c, err := harvbk.Open("/var/lib/harvbk")
//	defer c.Close()
//	err = c.SetTarget("file:///backups")
//	vm, err := harvbk.NewVM("default", "web")
//	defer vm.Close()
//	err = vm.AddDisk("root", "/images/web.raw")
//	err = c.Backup(ctx, vm, "web-1", nil)
//	info, err := c.BackupInfo("default", "web-1") // info.State == "Ready"
//	err = c.Restore(ctx, "default", "web-1", harvbk.RestoreOptions{NewVM: "default/web-copy", Into: "/restore"})
//
// Encrypted stores (harvbk/key.h) take their key from a key file or
// passphrase file setting (WithKeyFile, WithPassphraseFile) or from a *Key
// given for the session only (KeyFromFile, KeyFromPassphrase...; WithKey,
// Context.SetTargetKey); StoreKeyAdd, StoreKeyRemove and StoreKeys manage
// the store's key slots. A missing or wrong key is ErrKey.
//
// Errors of the library are *Error values (Code, Message) that errors.Is
// matches against the Err* sentinels (ErrNotFound...). Long operations take
// a context.Context and cancel the library operation when it is done.
// Context, VM, Key, Operation and Scheduler hold library handles: Close them.
// Every type is safe for use by several goroutines.
package harvbk
