package harvbk

/*
#include "helpers.h"
#include <string.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Key is a user key of an encrypted store (harvbk/key.h): a key file's bytes
// or a passphrase, held by the library in locked memory and wiped when the
// Key is closed. Make one with KeyFromFile, KeyFromPassphraseFile,
// KeyFromPassphrase or KeyFromBytes; give it to Context.SetTargetKey,
// WithKey, SnapshotStoreOptions.Key or Context.StoreKeyAdd, which copy it
// (so it may be closed right after). The key material cannot be read back.
// Safe for use by several goroutines; Close it when done.
type Key struct {
	mu   sync.RWMutex
	ptr  *C.harvbk_key
	kind string
}

func wrapKey(p *C.harvbk_key, kind string) *Key {
	k := &Key{ptr: p, kind: kind}
	runtime.SetFinalizer(k, (*Key).free) // a safety net: the key is wiped anyway
	return k
}

// KeyFromFile reads a key file: its bytes as they are (32..4096). The file
// must be a regular file neither group nor others may access: else
// ErrPermission (the message says "chmod 600"). Also ErrInvalid (size, not a
// regular file), ErrNotFound, ErrIO.
func KeyFromFile(path string) (*Key, error) {
	return keyFromPath(path, "key-file", func(p **C.harvbk_key, cp *C.char) C.int {
		return C.harvbk_key_from_file(p, cp)
	})
}

// KeyFromPassphraseFile reads a passphrase: the first line of a file (its
// line end dropped), with the file rules of KeyFromFile.
func KeyFromPassphraseFile(path string) (*Key, error) {
	return keyFromPath(path, "passphrase", func(p **C.harvbk_key, cp *C.char) C.int {
		return C.harvbk_key_from_passphrase_file(p, cp)
	})
}

// keyFromPath calls a harvbk_key_from_*file function on path.
func keyFromPath(path, kind string, from func(**C.harvbk_key, *C.char) C.int) (*Key, error) {
	var cs cstrings
	defer cs.free()
	cp, err := cs.add(path)
	if err != nil {
		return nil, err
	}
	var p *C.harvbk_key
	if err := call(func() C.int { return from(&p, cp) }); err != nil {
		return nil, err
	}
	return wrapKey(p, kind), nil
}

// KeyFromPassphrase makes a key of a passphrase (1..1024 bytes, no NUL byte:
// else ErrInvalid). The C copy the call needs is wiped after it.
func KeyFromPassphrase(passphrase string) (*Key, error) {
	for i := 0; i < len(passphrase); i++ {
		if passphrase[i] == 0 {
			return nil, newError(CodeInvalid, "a passphrase cannot contain a NUL byte", nil)
		}
	}
	cp := C.CString(passphrase)
	defer func() {
		C.memset(unsafe.Pointer(cp), 0, C.size_t(len(passphrase)))
		C.free(unsafe.Pointer(cp))
	}()
	var p *C.harvbk_key
	if err := call(func() C.int { return C.harvbk_key_from_passphrase(&p, cp) }); err != nil {
		return nil, err
	}
	return wrapKey(p, "passphrase"), nil
}

// KeyFromBytes makes a key of bytes in memory, like a key file's content
// (32..4096 bytes, else ErrInvalid). The library keeps its own copy: b may
// be wiped by the caller afterwards.
func KeyFromBytes(b []byte) (*Key, error) {
	var data unsafe.Pointer
	if len(b) > 0 {
		data = unsafe.Pointer(&b[0])
	}
	var p *C.harvbk_key
	err := call(func() C.int { return C.harvbk_key_from_bytes(&p, data, C.size_t(len(b))) })
	runtime.KeepAlive(b)
	if err != nil {
		return nil, err
	}
	return wrapKey(p, "key-file"), nil
}

// Kind is "key-file" (KeyFromFile, KeyFromBytes) or "passphrase".
func (k *Key) Kind() string { return k.kind }

func (k *Key) free() {
	if k.ptr != nil {
		C.harvbk_key_free(k.ptr)
		k.ptr = nil
	}
}

// Close wipes and frees the key. Closing twice is a no-op; a closed Key
// given to a call fails with an error wrapping ErrClosed.
func (k *Key) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.free()
	runtime.SetFinalizer(k, nil)
	return nil
}

// withKey runs f with the C key of k (nil for a nil k) under its read lock.
func withKey(k *Key, f func(p *C.harvbk_key) error) error {
	if k == nil {
		return f(nil)
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.ptr == nil {
		return closedError("Key")
	}
	return f(k.ptr)
}

// Store names one of a context's stores (harvbk_store_kind).
type Store int

const (
	StoreTarget    Store = 1 // the backup target's store
	StoreSnapshots Store = 2 // the context's local snapshot store
)

// StoreKey is one key slot of an encrypted store.
type StoreKey struct {
	ID      string    // 16 hex digits, what StoreKeyRemove takes
	Kind    string    // "key-file", "passphrase" or "unknown" (a newer library's)
	Created time.Time // when it was added (zero: unknown)
	InUse   bool      // the slot the context's key opens
}

// StoreKeys is what a store's config says about its encryption.
type StoreKeys struct {
	Encrypted bool
	// The store key's fingerprint, 32 hex digits ("" for a plaintext store):
	// the same whichever user key opens it.
	Fingerprint string
	Unlocked    bool // the context's key opens the store
	Keys        []StoreKey
}

// InUse is the slot the context's key opens, nil when none.
func (s *StoreKeys) InUse() *StoreKey {
	for i := range s.Keys {
		if s.Keys[i].InUse {
			return &s.Keys[i]
		}
	}
	return nil
}

// SetTargetKey gives the context the target's encryption key for this
// session only (copied; nil removes it), like SetTargetSecret: every process
// whose configuration names no key file gives it once. It takes precedence
// over the key file and passphrase file settings and is never written to the
// state directory; an open store is reopened with it on next use. Errors:
// ErrNoTarget, ErrBusy (operations run).
func (c *Context) SetTargetKey(k *Key) error {
	return withKey(k, func(kp *C.harvbk_key) error {
		return c.do(func(p *C.harvbk_ctx) error {
			return call(func() C.int { return C.harvbk_ctx_set_target_key(p, kp) })
		})
	})
}

// SetSnapshotStoreKey is SetTargetKey for the encrypted snapshot store.
// Errors: ErrBusy (snapshot operations run).
func (c *Context) SetSnapshotStoreKey(k *Key) error {
	return withKey(k, func(kp *C.harvbk_key) error {
		return c.do(func(p *C.harvbk_ctx) error {
			return call(func() C.int { return C.harvbk_snapshot_store_set_key(p, kp) })
		})
	})
}

// StoreKeyAdd adds k to the keys of an encrypted store: the store key is
// wrapped under it in a new key slot of the store's config (no chunk is
// touched); the store must open with the context's current key. It returns
// the new slot's id. Errors: ErrExists (k opens the store already), ErrKey,
// ErrState (a plaintext store), ErrInvalid (32 keys already), ErrBusy
// (another process rewrote the store's config at the same instant: try
// again), ErrReadOnly, ErrNoTarget.
func (c *Context) StoreKeyAdd(store Store, k *Key) (string, error) {
	if k == nil {
		return "", newError(CodeInvalid, "StoreKeyAdd: the key is nil", nil)
	}
	var id [17]C.char
	err := withKey(k, func(kp *C.harvbk_key) error {
		return c.do(func(p *C.harvbk_ctx) error {
			return call(func() C.int {
				return C.harvbk_store_key_add(p, C.harvbk_store_kind(store), kp, &id[0], C.size_t(len(id)))
			})
		})
	})
	if err != nil {
		return "", err
	}
	return C.GoString(&id[0]), nil
}

// StoreKeyRemove removes the key slot id (as listed by StoreKeys). The slot
// the context opened the store with, and the last one, cannot be removed
// (ErrState): to rotate, add the new key, switch the configuration to it,
// then remove the old one. Errors also: ErrNotFound, ErrKey, ErrBusy.
func (c *Context) StoreKeyRemove(store Store, id string) error {
	var cs cstrings
	defer cs.free()
	cid, err := cs.add(id)
	if err != nil {
		return err
	}
	return c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_store_key_remove(p, C.harvbk_store_kind(store), cid) })
	})
}

// StoreKeys reads a store's encryption and key slots from its config,
// without needing a key; with the context's key it also tells which slot
// that key opens (a wrong key is no error: Unlocked is false). Errors:
// ErrNoTarget, ErrTargetUnreachable, ErrNotFound (no snapshot store yet),
// ErrCorrupt, ErrFormat.
func (c *Context) StoreKeys(store Store) (*StoreKeys, error) {
	var l *C.harvbk_store_keys
	if err := c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_store_keys_get(p, C.harvbk_store_kind(store), &l) })
	}); err != nil {
		return nil, err
	}
	defer C.harvbk_store_keys_free(l)
	out := &StoreKeys{
		Encrypted:   C.harvbk_store_keys_encrypted(l) == 1,
		Fingerprint: gostr(C.harvbk_store_keys_fingerprint(l)),
		Unlocked:    C.harvbk_store_keys_unlocked(l) == 1,
	}
	n := int(C.harvbk_store_keys_count(l))
	for i := 0; i < n; i++ {
		ci := C.size_t(i)
		sk := StoreKey{
			ID:    gostr(C.harvbk_store_keys_id(l, ci)),
			Kind:  gostr(C.harvbk_store_keys_kind(l, ci)),
			InUse: C.harvbk_store_keys_in_use(l, ci) == 1,
		}
		if s := int64(C.harvbk_store_keys_created(l, ci)); s > 0 {
			sk.Created = time.Unix(s, 0)
		}
		out.Keys = append(out.Keys, sk)
	}
	return out, nil
}
