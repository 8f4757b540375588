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
// Errors of the library are *Error values (Code, Message) that errors.Is
// matches against the Err* sentinels (ErrNotFound...). Long operations take
// a context.Context and cancel the library operation when it is done.
// Context, VM, Operation and Scheduler hold library handles: Close them.
// Every type is safe for use by several goroutines.
package harvbk
