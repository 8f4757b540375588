// backup_restore backs up a VM with one disk into a local directory target,
// restores it as a new VM and checks the restored disk byte for byte.
//
//	go run ./examples/backup_restore [WORK_DIR]
//
// WORK_DIR (default: a new temporary directory, removed at the end) gets
// state/, target/, disk.raw and restore/. Ctrl-C cancels the running
// operation through its context.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/signal"
	"path/filepath"

	"harvbk.dev/go/harvbk"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	work := ""
	if len(os.Args) > 1 {
		work = os.Args[1]
	} else {
		dir, err := os.MkdirTemp("", "harvbk-example-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	work, err := filepath.Abs(work)
	if err != nil {
		return err
	}

	// a 6 MiB disk: random data, a hole of zeros, random data again
	disk := make([]byte, 6<<20)
	rand.New(rand.NewSource(1)).Read(disk[:2<<20])
	rand.New(rand.NewSource(2)).Read(disk[4<<20:])
	diskPath := filepath.Join(work, "disk.raw")
	if err := os.WriteFile(diskPath, disk, 0o644); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	c, err := harvbk.Open(filepath.Join(work, "state"))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetTarget("file://" + filepath.Join(work, "target")); err != nil {
		return err
	}

	vm, err := harvbk.NewVM("default", "web")
	if err != nil {
		return err
	}
	defer vm.Close()
	if err := vm.AddDisk("root", diskPath); err != nil {
		return err
	}

	last := uint64(0)
	err = c.Backup(ctx, vm, "web-1", &harvbk.BackupOptions{
		Progress: func(done, total uint64) error {
			if done == total && done != last {
				fmt.Printf("progress: %d/%d bytes\n", done, total)
			}
			last = done
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	info, err := c.BackupInfo("default", "web-1")
	if err != nil {
		return err
	}
	fmt.Printf("backup %s/%s: %s, %d logical bytes, %d uploaded\n",
		info.Namespace, info.Name, info.State, info.LogicalBytes, info.UploadedBytes)

	// a second backup of the same disk: nothing new to upload
	if err := c.Backup(ctx, vm, "web-2", nil); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	info2, err := c.BackupInfo("default", "web-2")
	if err != nil {
		return err
	}
	fmt.Printf("backup %s/%s: %s, deduplicated: %t\n", info2.Namespace, info2.Name, info2.State,
		info2.UploadedBytes < info.UploadedBytes/10)

	if _, err := c.BackupInfo("default", "web-9"); errors.Is(err, harvbk.ErrNotFound) {
		fmt.Println("backup default/web-9: not found")
	}

	into := filepath.Join(work, "restore")
	err = c.Restore(ctx, "default", "web-1", harvbk.RestoreOptions{NewVM: "default/web-copy", Into: into})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	got, err := os.ReadFile(filepath.Join(into, "root.raw"))
	if err != nil {
		return err
	}
	fmt.Printf("restored default/web-copy: %d bytes, identical: %t\n", len(got), bytes.Equal(got, disk))
	if !bytes.Equal(got, disk) {
		return errors.New("restored disk differs")
	}
	return nil
}
