package harvbk

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Encrypted stores through the binding (harvbk/key.h): Key values, session
// keys, key slots, rotation, refused key files, the snapshot store.

const metaSecret = "go-keys-metadata-secret"

func secretBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// privateFile writes data to dir/name with mode and returns its path.
func privateFile(t testing.TB, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// treeOf maps every file under root to the SHA-256 of its bytes.
func treeOf(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// allBytes is the concatenation of every file under root.
func allBytes(t testing.TB, root string) []byte {
	t.Helper()
	var buf bytes.Buffer
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		buf.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openCtx(t testing.TB, dir string) *Context {
	t.Helper()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// secretVM is VM default/name with one disk root at path and metadata
// holding metaSecret.
func secretVM(t testing.TB, name, path string) *VM {
	t.Helper()
	vm, err := NewVM("default", name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	if err := vm.AddDisk("root", path); err != nil {
		t.Fatal(err)
	}
	if err := vm.SetMetadata([]byte(`{"spec":{"password":"` + metaSecret + `"}}`)); err != nil {
		t.Fatal(err)
	}
	return vm
}

func restoreEqual(t testing.TB, c *Context, snapshot bool, name, into string, want []byte) {
	t.Helper()
	opts := RestoreOptions{NewVM: "default/copy-" + filepath.Base(into), Into: into}
	var err error
	if snapshot {
		err = c.RestoreSnapshot(context.Background(), "default", name, opts)
	} else {
		err = c.Restore(context.Background(), "default", name, opts)
	}
	if err != nil {
		t.Fatalf("restore %s: %v", name, err)
	}
	mustEqualFile(t, filepath.Join(into, "root.raw"), want)
}

func mustKey(t testing.TB) func(*Key, error) *Key {
	return func(k *Key, err error) *Key {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
}

var hex16, hex32 = regexp.MustCompile(`^[0-9a-f]{16}$`), regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestKeyValues(t *testing.T) {
	dir := t.TempDir()
	kf := privateFile(t, dir, "k", secretBytes(t, 32), 0o600)
	pf := privateFile(t, dir, "p", []byte("correct horse battery staple\n"), 0o600)
	must := mustKey(t)
	keys := []*Key{must(KeyFromFile(kf)), must(KeyFromPassphraseFile(pf)),
		must(KeyFromPassphrase("a passphrase")), must(KeyFromBytes(secretBytes(t, 4096)))}
	var kinds []string
	for _, k := range keys {
		kinds = append(kinds, k.Kind())
	}
	if want := []string{"key-file", "passphrase", "passphrase", "key-file"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	for _, k := range keys {
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		k.Close() // twice: no-op
	}
	// a closed key is refused, ErrClosed
	e := newEnv(t)
	if err := e.ctx.SetTargetKey(keys[0]); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("closed key: %v", err)
	}
	if _, err := e.ctx.StoreKeyAdd(StoreTarget, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil key: %v", err)
	}
	// what the library refuses
	_, err := KeyFromBytes([]byte("too short"))
	if we := wantCode(t, err, CodeInvalid); !strings.Contains(we.Message, "32 to 4096") {
		t.Fatalf("short key: %v", err)
	}
	_, err = KeyFromBytes(make([]byte, 4097))
	wantCode(t, err, CodeInvalid)
	_, err = KeyFromBytes(nil)
	wantCode(t, err, CodeInvalid)
	_, err = KeyFromPassphrase("")
	wantCode(t, err, CodeInvalid)
	_, err = KeyFromPassphrase("nul\x00inside")
	wantCode(t, err, CodeInvalid)
	_, err = KeyFromFile(filepath.Join(dir, "missing"))
	wantCode(t, err, CodeNotFound)
	_, err = KeyFromFile("relative\x00nul")
	wantCode(t, err, CodeInvalid)
	// a plaintext target: keys list says so, adding one is ErrState
	ks, err := e.ctx.StoreKeys(StoreTarget)
	if err != nil || ks.Encrypted || ks.Fingerprint != "" || len(ks.Keys) != 0 {
		t.Fatalf("plaintext store keys: %+v %v", ks, err)
	}
	_, err = e.ctx.StoreKeyAdd(StoreTarget, must(KeyFromPassphrase("x")))
	wantCode(t, err, CodeState)
	cfg, err := e.ctx.Target()
	if err != nil || cfg.Encrypt || cfg.KeyFile != "" || cfg.Key != nil {
		t.Fatalf("plaintext Target: %+v %v", cfg, err)
	}
}

func TestKeyFileGroupReadableRefused(t *testing.T) {
	dir := t.TempDir()
	kf := privateFile(t, dir, "store.key", secretBytes(t, 32), 0o640)
	pf := privateFile(t, dir, "pass", []byte("a passphrase\n"), 0o604)
	for _, f := range []func() (*Key, error){
		func() (*Key, error) { return KeyFromFile(kf) },
		func() (*Key, error) { return KeyFromPassphraseFile(pf) },
	} {
		_, err := f()
		if we := wantCode(t, err, CodePermission); !strings.Contains(we.Message, "chmod 600") {
			t.Fatalf("message %q does not say chmod 600", we.Message)
		}
	}
	c := openCtx(t, filepath.Join(dir, "state"))
	target := filepath.Join(dir, "target")
	wantCode(t, c.SetTarget("file://"+target, WithKeyFile(kf)), CodePermission)
	wantCode(t, c.SetTarget("file://"+target, WithPassphraseFile(pf)), CodePermission)
	wantCode(t, c.SetSnapshotStore(&SnapshotStoreOptions{Dir: filepath.Join(dir, "snaps"), KeyFile: kf}),
		CodePermission)
	_, err := c.Target()
	wantCode(t, err, CodeNoTarget)
	for _, p := range []string{filepath.Join(target, "harvbk-store.json"), filepath.Join(dir, "snaps", "harvbk-store.json")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s: %v (created though refused)", p, err)
		}
	}
}

// A store encrypted under session keys only: round trip, Target reports the
// settings without the key, the state directory never holds the key or the
// passphrase, another process needs the key again.
func TestKeySessionRoundTrip(t *testing.T) {
	dir := t.TempDir()
	raw := secretBytes(t, 32)
	const passphrase = "go session passphrase never stored"
	target, state := filepath.Join(dir, "target"), filepath.Join(dir, "state")
	disk := filepath.Join(dir, "root.raw")
	data := makeDisk(t, disk, 2<<20+777, 5)
	must := mustKey(t)
	ctx := context.Background()

	c := openCtx(t, state)
	key := must(KeyFromBytes(raw))
	if err := c.SetTarget("file://"+target, WithKey(key), WithChunkSize(65536)); err != nil {
		t.Fatal(err)
	}
	key.Close() // copied
	cfg, err := c.Target()
	if err != nil || !cfg.Encrypt || cfg.KeyFile != "" || cfg.PassphraseFile != "" || cfg.Key != nil ||
		cfg.Settings[TargetChunkSize] != "65536" {
		t.Fatalf("Target: %+v %v", cfg, err)
	}
	if err := c.Backup(ctx, secretVM(t, "web", disk), "b1", nil); err != nil {
		t.Fatal(err)
	}
	restoreEqual(t, c, false, "b1", filepath.Join(dir, "r1"), data)
	ks, err := c.StoreKeys(StoreTarget)
	if err != nil || !ks.Encrypted || !ks.Unlocked || !hex32.MatchString(ks.Fingerprint) || len(ks.Keys) != 1 ||
		ks.Keys[0].Kind != "key-file" || !ks.Keys[0].InUse || !hex16.MatchString(ks.Keys[0].ID) ||
		ks.Keys[0].Created.IsZero() {
		t.Fatalf("StoreKeys: %+v %v", ks, err)
	}
	// a passphrase slot; the session switches to it
	pw := must(KeyFromPassphrase(passphrase))
	pid, err := c.StoreKeyAdd(StoreTarget, pw)
	if err != nil || !hex16.MatchString(pid) {
		t.Fatalf("StoreKeyAdd: %q %v", pid, err)
	}
	if err := c.SetTargetKey(pw); err != nil {
		t.Fatal(err)
	}
	if ks, err := c.StoreKeys(StoreTarget); err != nil || ks.InUse() == nil || ks.InUse().ID != pid {
		t.Fatalf("in use after the switch: %+v %v", ks, err)
	}
	restoreEqual(t, c, false, "b1", filepath.Join(dir, "r2"), data)
	c.Close()

	// another process: no key until it gives one
	c2 := openCtx(t, state)
	wantCode(t, c2.CheckTarget(), CodeKey)
	if ks, err := c2.StoreKeys(StoreTarget); err != nil || ks.Unlocked || ks.InUse() != nil {
		t.Fatalf("StoreKeys without key: %+v %v", ks, err)
	}
	if cfg, err := c2.Target(); err != nil || !cfg.Encrypt {
		t.Fatalf("Target after reopening: %+v %v", cfg, err)
	}
	if err := c2.SetTargetKey(must(KeyFromPassphrase(passphrase))); err != nil {
		t.Fatal(err)
	}
	if err := c2.CheckTarget(); err != nil {
		t.Fatal(err)
	}
	restoreEqual(t, c2, false, "b1", filepath.Join(dir, "r3"), data)
	if err := c2.SetTargetKey(nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c2.CheckTarget(), CodeKey)
	c2.Close()

	st := allBytes(t, state)
	if len(st) == 0 || bytes.Contains(st, raw) || bytes.Contains(st, []byte(hex.EncodeToString(raw))) ||
		bytes.Contains(st, []byte(passphrase)) {
		t.Fatal("the state directory holds the key or the passphrase")
	}
	store := allBytes(t, target)
	if bytes.Contains(store, []byte(metaSecret)) || bytes.Contains(store, raw) || bytes.Contains(store, data[:64]) {
		t.Fatal("plaintext in the encrypted store")
	}
}

// A wrong key: ErrKey when the target is set or an operation starts; not a
// byte of the store changes, nothing is restored.
func TestKeyWrongKeyWritesNothing(t *testing.T) {
	dir := t.TempDir()
	k1 := privateFile(t, dir, "k1", secretBytes(t, 32), 0o600)
	k2 := privateFile(t, dir, "k2", secretBytes(t, 32), 0o600)
	target := filepath.Join(dir, "target")
	url := "file://" + target
	disk := filepath.Join(dir, "root.raw")
	makeDisk(t, disk, 1<<20, 6)
	must := mustKey(t)
	ctx := context.Background()

	c := openCtx(t, filepath.Join(dir, "state"))
	if err := c.SetTarget(url, WithKeyFile(k1), WithChunkSize(65536)); err != nil {
		t.Fatal(err)
	}
	if cfg, err := c.Target(); err != nil || !cfg.Encrypt || cfg.KeyFile != k1 || cfg.PassphraseFile != "" {
		t.Fatalf("Target: %+v %v", cfg, err)
	}
	if err := c.Backup(ctx, secretVM(t, "web", disk), "b1", nil); err != nil {
		t.Fatal(err)
	}
	ks, err := c.StoreKeys(StoreTarget)
	if err != nil {
		t.Fatal(err)
	}
	before := treeOf(t, target)
	if _, ok := before["harvbk-store.json"]; !ok || len(before) < 4 {
		t.Fatalf("store files %v", before)
	}

	c2 := openCtx(t, filepath.Join(dir, "state2"))
	err = c2.SetTarget(url, WithKeyFile(k2))
	if we := wantCode(t, err, CodeKey); !errors.Is(err, ErrKey) || !strings.Contains(we.Message, "wrong key") {
		t.Fatalf("wrong key file: %v", err)
	}
	wantCode(t, c2.SetTarget(url, WithKey(must(KeyFromPassphrase("not it")))), CodeKey)
	wantCode(t, c2.SetTarget(url), CodeKey) // no key for an encrypted store
	wantCode(t, c2.SetTarget(url, WithEncrypt(true)), CodeKey)
	if after := treeOf(t, target); !reflect.DeepEqual(before, after) {
		t.Fatalf("the store changed: %v -> %v", before, after)
	}

	// the context whose key is now wrong: every operation refused
	if err := c.SetTargetKey(must(KeyFromFile(k2))); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Backup(ctx, secretVM(t, "web2", disk), "b2", nil), CodeKey)
	into := filepath.Join(dir, "restore")
	wantCode(t, c.Restore(ctx, "default", "b1", RestoreOptions{NewVM: "default/copy", Into: into}), CodeKey)
	if _, err := os.Stat(into); !os.IsNotExist(err) {
		t.Fatalf("restore directory made: %v", err)
	}
	wantCode(t, c.VerifyBackup(ctx, "default", "b1", nil), CodeKey)
	_, err = c.StoreKeyAdd(StoreTarget, must(KeyFromPassphrase("x")))
	wantCode(t, err, CodeKey)
	if l, err := c.StoreKeys(StoreTarget); err != nil || !l.Encrypted || l.Unlocked ||
		l.Fingerprint != ks.Fingerprint || l.InUse() != nil {
		t.Fatalf("StoreKeys with a wrong key: %+v %v", l, err)
	}
	if after := treeOf(t, target); !reflect.DeepEqual(before, after) {
		t.Fatalf("the store changed: %v -> %v", before, after)
	}
}

// Rotation: add a passphrase, switch the configuration to it, remove the key
// file's slot; the fingerprint and every chunk stay, restores give the same
// bytes, the old key file no longer opens the store.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	k1 := privateFile(t, dir, "k1", secretBytes(t, 32), 0o600)
	pf := privateFile(t, dir, "pass", []byte("rotate me, I am the new key\n"), 0o600)
	target := filepath.Join(dir, "target")
	url := "file://" + target
	disk := filepath.Join(dir, "root.raw")
	data := makeDisk(t, disk, 2<<20, 7)
	must := mustKey(t)
	ctx := context.Background()

	c := openCtx(t, filepath.Join(dir, "state"))
	if err := c.SetTarget(url, WithKeyFile(k1), WithChunkSize(65536)); err != nil {
		t.Fatal(err)
	}
	if err := c.Backup(ctx, secretVM(t, "web", disk), "b1", nil); err != nil {
		t.Fatal(err)
	}
	ks, err := c.StoreKeys(StoreTarget)
	if err != nil || ks.InUse() == nil || ks.InUse().Kind != "key-file" {
		t.Fatalf("StoreKeys: %+v %v", ks, err)
	}
	old := *ks.InUse()
	chunks := map[string]string{}
	for p, h := range treeOf(t, target) {
		if strings.HasPrefix(p, "chunks") {
			chunks[p] = h
		}
	}
	if len(chunks) == 0 {
		t.Fatal("no chunk files")
	}

	pw := must(KeyFromPassphraseFile(pf))
	newID, err := c.StoreKeyAdd(StoreTarget, pw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StoreKeyAdd(StoreTarget, pw)
	wantCode(t, err, CodeExists)
	if we := wantCode(t, c.StoreKeyRemove(StoreTarget, old.ID), CodeState); !strings.Contains(we.Message, "opened the store with") {
		t.Fatalf("removing the key in use: %v", we)
	}
	if err := c.SetTarget(url, WithPassphraseFile(pf)); err != nil { // switch
		t.Fatal(err)
	}
	if cfg, err := c.Target(); err != nil || cfg.PassphraseFile != pf || cfg.KeyFile != "" || !cfg.Encrypt {
		t.Fatalf("Target after the switch: %+v %v", cfg, err)
	}
	if err := c.StoreKeyRemove(StoreTarget, old.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.StoreKeyRemove(StoreTarget, old.ID), CodeNotFound)
	wantCode(t, c.StoreKeyRemove(StoreTarget, newID), CodeState) // the last one
	after, err := c.StoreKeys(StoreTarget)
	if err != nil || after.Fingerprint != ks.Fingerprint || len(after.Keys) != 1 ||
		after.Keys[0].ID != newID || after.Keys[0].Kind != "passphrase" || !after.Keys[0].InUse {
		t.Fatalf("StoreKeys after rotation: %+v %v", after, err)
	}
	restoreEqual(t, c, false, "b1", filepath.Join(dir, "r1"), data)
	if err := c.Backup(ctx, secretVM(t, "web", disk), "b2", nil); err != nil {
		t.Fatal(err)
	}
	now := treeOf(t, target)
	for p, h := range chunks {
		if now[p] != h {
			t.Fatalf("chunk %s rewritten by the rotation", p)
		}
	}

	c2 := openCtx(t, filepath.Join(dir, "state2"))
	wantCode(t, c2.SetTarget(url, WithKeyFile(k1)), CodeKey)
	if err := c2.SetTargetConfig(TargetConfig{URL: url, PassphraseFile: pf}); err != nil {
		t.Fatal(err)
	}
	restoreEqual(t, c2, false, "b2", filepath.Join(dir, "r2"), data)
}

func TestKeyEncryptedSnapshotStore(t *testing.T) {
	dir := t.TempDir()
	snaps := filepath.Join(dir, "snaps")
	kf := privateFile(t, dir, "snap.key", secretBytes(t, 32), 0o600)
	disk := filepath.Join(dir, "root.raw")
	data := makeDisk(t, disk, 1<<20+4321, 8)
	const passphrase = "go snapshot passphrase"
	must := mustKey(t)
	ctx := context.Background()
	state := filepath.Join(dir, "state")

	c := openCtx(t, state)
	if err := c.SetSnapshotStore(&SnapshotStoreOptions{Dir: snaps, ChunkSize: 65536,
		Key: must(KeyFromPassphrase(passphrase))}); err != nil {
		t.Fatal(err)
	}
	if err := c.Snapshot(ctx, secretVM(t, "web", disk), "s1", nil); err != nil {
		t.Fatal(err)
	}
	restoreEqual(t, c, true, "s1", filepath.Join(dir, "r1"), data)
	ks, err := c.StoreKeys(StoreSnapshots)
	if err != nil || !ks.Encrypted || !ks.Unlocked || len(ks.Keys) != 1 || ks.Keys[0].Kind != "passphrase" {
		t.Fatalf("StoreKeys: %+v %v", ks, err)
	}
	kid, err := c.StoreKeyAdd(StoreSnapshots, must(KeyFromFile(kf)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StoreKeys(StoreTarget)
	wantCode(t, err, CodeNoTarget)
	c.Close()
	store := allBytes(t, snaps)
	if !bytes.Contains(store, []byte("aes-256-gcm")) || bytes.Contains(store, []byte(metaSecret)) ||
		bytes.Contains(store, data[:64]) {
		t.Fatal("the snapshot store is not encrypted")
	}
	if bytes.Contains(allBytes(t, state), []byte(passphrase)) {
		t.Fatal("the passphrase is in the state directory")
	}

	// another process: no key -> ErrKey, nothing written; then the key file
	before := treeOf(t, snaps)
	c2 := openCtx(t, state)
	wantCode(t, c2.Snapshot(ctx, secretVM(t, "web", disk), "s2", nil), CodeKey)
	if err := c2.SetSnapshotStoreKey(must(KeyFromPassphrase("wrong"))); err != nil {
		t.Fatal(err)
	}
	rx := filepath.Join(dir, "rx")
	wantCode(t, c2.RestoreSnapshot(ctx, "default", "s1", RestoreOptions{NewVM: "default/x", Into: rx}), CodeKey)
	if _, err := os.Stat(rx); !os.IsNotExist(err) {
		t.Fatalf("restore directory made: %v", err)
	}
	if after := treeOf(t, snaps); !reflect.DeepEqual(before, after) {
		t.Fatal("the snapshot store changed under a wrong key")
	}
	if err := c2.SetSnapshotStoreKey(nil); err != nil {
		t.Fatal(err)
	}
	if err := c2.SetSnapshotStore(&SnapshotStoreOptions{Dir: snaps, KeyFile: kf}); err != nil {
		t.Fatal(err)
	}
	restoreEqual(t, c2, true, "s1", filepath.Join(dir, "r2"), data)
	if err := c2.Snapshot(ctx, secretVM(t, "web", disk), "s2", nil); err != nil {
		t.Fatal(err)
	}
	if ks, err := c2.StoreKeys(StoreSnapshots); err != nil || ks.InUse() == nil || ks.InUse().ID != kid {
		t.Fatalf("StoreKeys: %+v %v", ks, err)
	}

	// a plaintext snapshot store is never encrypted in place
	c3 := openCtx(t, filepath.Join(dir, "state3"))
	plain := filepath.Join(dir, "plain")
	if err := c3.SetSnapshotStore(&SnapshotStoreOptions{Dir: plain}); err != nil {
		t.Fatal(err)
	}
	if err := c3.Snapshot(ctx, secretVM(t, "web", disk), "p1", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c3.SetSnapshotStore(&SnapshotStoreOptions{Dir: plain, KeyFile: kf}), CodeState)
	wantCode(t, c3.SetSnapshotStore(&SnapshotStoreOptions{Dir: plain, Encrypt: true}), CodeState)
	_, err = c3.StoreKeyAdd(StoreSnapshots, must(KeyFromFile(kf)))
	wantCode(t, err, CodeState)
}

// One Key used by many goroutines while it is closed: each call either
// works or fails with ErrClosed (run under -race by go/race).
func TestConcurrentKeyUseAndClose(t *testing.T) {
	dir := t.TempDir()
	c := openCtx(t, filepath.Join(dir, "state"))
	if err := c.SetTarget("file://"+filepath.Join(dir, "target"), WithKey(mustKey(t)(KeyFromBytes(secretBytes(t, 32))))); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 20; round++ {
		k, err := KeyFromBytes(secretBytes(t, 32))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.SetSnapshotStoreKey(k); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("SetSnapshotStoreKey: %v", err)
				}
			}()
		}
		k.Close()
		wg.Wait()
	}
}
