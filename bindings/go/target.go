package harvbk

/*
#include "helpers.h"
*/
import "C"

import (
	"sort"
	"strconv"
	"time"
	"unsafe"
)

// TargetKey is a target setting (harvbk_target_key). Values are strings.
type TargetKey int

// Target settings of harvbk/target.h.
const (
	TargetURL             TargetKey = 1
	TargetEndpoint        TargetKey = 2  // S3 endpoint URL
	TargetRegion          TargetKey = 3  // S3 region
	TargetAccessKeyID     TargetKey = 4  // S3 access key id
	TargetSecretAccessKey TargetKey = 5  // S3 secret: write-only
	TargetCACertFile      TargetKey = 6  // PEM file of the CA certificates to trust
	TargetVirtualHosted   TargetKey = 7  // "1": virtual-hosted style, "0": path style
	TargetRefreshInterval TargetKey = 8  // seconds between catalog syncs; "0": on demand
	TargetCodec           TargetKey = 9  // "zstd", "lz4", "gzip", "none"
	TargetChunkSize       TargetKey = 10 // bytes, power of two 64 KiB..64 MiB
	TargetTimeoutMS       TargetKey = 11 // connect/request timeout, ms
	TargetParallel        TargetKey = 12 // requests in flight
	TargetStoreSecret     TargetKey = 13 // "1": persist the secret in the state dir
	TargetReadOnly        TargetKey = 14 // "1": never write to the target
	// Encryption at rest (docs/FORMAT.md section 10): TargetConfig's
	// Encrypt, KeyFile and PassphraseFile (WithEncrypt, WithKeyFile,
	// WithPassphraseFile; a session key: WithKey).
	TargetEncrypt        TargetKey = 15 // "1": the store is encrypted
	TargetKeyFile        TargetKey = 16 // absolute path of the store's key file (mode 0600)
	TargetPassphraseFile TargetKey = 17 // absolute path of a passphrase file (mode 0600)
)

// The settings Context.Target reports in TargetConfig.Settings (the others
// have fields of their own).
const lastSettingsKey = TargetReadOnly

// TargetConfig is a backup target: a URL (file:///dir, nfs://server/export/
// path, s3://bucket/prefix) and its settings. Empty values are not set.
type TargetConfig struct {
	URL             string
	Endpoint        string
	Region          string
	AccessKeyID     string
	SecretAccessKey string // never read back: see HasSecret
	CACertFile      string
	// Encryption at rest (harvbk/key.h): an encrypted store (implied by
	// any key), its key file or passphrase file (absolute paths of files
	// mode 0600: only the path is recorded, the file is read at every use).
	Encrypt        bool
	KeyFile        string
	PassphraseFile string
	// A key for this session only (WithKey): copied by SetTargetConfig, it
	// takes precedence over KeyFile and PassphraseFile, is never written to
	// the state directory and never read back (Context.Target leaves it nil;
	// Encrypt tells the store is encrypted).
	Key *Key
	// Any setting by key (e.g. TargetCodec: "lz4"); applied after the fields
	// above. Context.Target fills it with the other non-empty settings.
	Settings map[TargetKey]string
	// Context.Target only: whether a secret access key is set.
	HasSecret bool
}

// TargetOption sets target settings for Context.SetTarget.
type TargetOption func(*TargetConfig)

// WithSetting sets any target setting.
func WithSetting(key TargetKey, value string) TargetOption {
	return func(t *TargetConfig) {
		if t.Settings == nil {
			t.Settings = map[TargetKey]string{}
		}
		t.Settings[key] = value
	}
}

// WithS3 sets the S3 endpoint URL, region and credentials.
func WithS3(endpoint, region, accessKeyID, secretAccessKey string) TargetOption {
	return func(t *TargetConfig) {
		t.Endpoint, t.Region, t.AccessKeyID, t.SecretAccessKey = endpoint, region, accessKeyID, secretAccessKey
	}
}

// WithCACertFile trusts the CA certificates of a PEM file (S3 over HTTPS).
func WithCACertFile(path string) TargetOption {
	return func(t *TargetConfig) { t.CACertFile = path }
}

// WithVirtualHosted selects virtual-hosted style S3 addressing.
func WithVirtualHosted(on bool) TargetOption {
	return WithSetting(TargetVirtualHosted, boolString(on))
}

// WithCodec sets the codec of new chunks: "zstd", "lz4", "gzip" or "none".
func WithCodec(codec string) TargetOption { return WithSetting(TargetCodec, codec) }

// WithChunkSize sets the chunk size of a store the target creates.
func WithChunkSize(bytes int) TargetOption {
	return WithSetting(TargetChunkSize, strconv.Itoa(bytes))
}

// WithTimeout sets the connect/request timeout.
func WithTimeout(d time.Duration) TargetOption {
	return WithSetting(TargetTimeoutMS, strconv.FormatInt(d.Milliseconds(), 10))
}

// WithRefreshInterval sets how often a scheduler syncs the catalog (0: on
// demand).
func WithRefreshInterval(d time.Duration) TargetOption {
	return WithSetting(TargetRefreshInterval, strconv.FormatInt(int64(d/time.Second), 10))
}

// WithParallel sets the number of requests in flight.
func WithParallel(n int) TargetOption { return WithSetting(TargetParallel, strconv.Itoa(n)) }

// WithStoreSecret persists (or not) the secret in the state directory.
func WithStoreSecret(on bool) TargetOption { return WithSetting(TargetStoreSecret, boolString(on)) }

// WithReadOnly makes the target read-only for this context.
func WithReadOnly(on bool) TargetOption { return WithSetting(TargetReadOnly, boolString(on)) }

// WithEncrypt asks for an encrypted store: a new store is created encrypted,
// an existing plaintext one is refused (ErrKey). Any key implies it.
func WithEncrypt(on bool) TargetOption { return func(t *TargetConfig) { t.Encrypt = on } }

// WithKeyFile names the encrypted store's key file (absolute path; the file
// must be mode 0600, else ErrPermission).
func WithKeyFile(path string) TargetOption { return func(t *TargetConfig) { t.KeyFile = path } }

// WithPassphraseFile names a file whose first line is the encrypted store's
// passphrase (absolute path, mode 0600).
func WithPassphraseFile(path string) TargetOption {
	return func(t *TargetConfig) { t.PassphraseFile = path }
}

// WithKey gives the encrypted store's key for this session only (see
// TargetConfig.Key and Context.SetTargetKey). The Key may be closed once
// SetTarget returned.
func WithKey(k *Key) TargetOption { return func(t *TargetConfig) { t.Key = k } }

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// SetTarget points the context at the backup target url with the settings
// of opts, e.g.
//
//	c.SetTarget("file:///backups")
//	c.SetTarget("s3://bucket/prefix", harvbk.WithS3(endpoint, "us-east-1", id, secret))
//	c.SetTarget("nfs://server/export/backups")
//
// It opens (creating when empty) the store there and records the
// configuration in the state directory.
func (c *Context) SetTarget(url string, opts ...TargetOption) error {
	cfg := TargetConfig{URL: url}
	for _, o := range opts {
		o(&cfg)
	}
	return c.SetTargetConfig(cfg)
}

// SetTargetConfig is SetTarget with a whole TargetConfig.
func (c *Context) SetTargetConfig(cfg TargetConfig) error {
	var tc *C.harvbk_target_config
	if err := call(func() C.int { return C.harvbk_target_config_new(&tc) }); err != nil {
		return err
	}
	defer C.harvbk_target_config_free(tc)
	encrypt := "" // unset: implied by a key, else the library's default
	if cfg.Encrypt {
		encrypt = "1"
	}
	set := func(k TargetKey, v string) error {
		if v == "" {
			return nil
		}
		var cs cstrings
		defer cs.free()
		cv, err := cs.add(v)
		if err != nil {
			return err
		}
		return call(func() C.int { return C.harvbk_target_config_set(tc, C.harvbk_target_key(k), cv) })
	}
	for _, kv := range []struct {
		k TargetKey
		v string
	}{{TargetURL, cfg.URL}, {TargetEndpoint, cfg.Endpoint}, {TargetRegion, cfg.Region},
		{TargetAccessKeyID, cfg.AccessKeyID}, {TargetSecretAccessKey, cfg.SecretAccessKey},
		{TargetCACertFile, cfg.CACertFile}, {TargetKeyFile, cfg.KeyFile},
		{TargetPassphraseFile, cfg.PassphraseFile}, {TargetEncrypt, encrypt}} {
		if err := set(kv.k, kv.v); err != nil {
			return err
		}
	}
	keys := make([]int, 0, len(cfg.Settings))
	for k := range cfg.Settings {
		keys = append(keys, int(k))
	}
	sort.Ints(keys) // unknown keys: the library refuses them (ErrInvalid)
	for _, k := range keys {
		if err := set(TargetKey(k), cfg.Settings[TargetKey(k)]); err != nil {
			return err
		}
	}
	if cfg.Key != nil { // copied into tc
		if err := withKey(cfg.Key, func(k *C.harvbk_key) error {
			return call(func() C.int { return C.harvbk_target_config_set_key(tc, k) })
		}); err != nil {
			return err
		}
	}
	return c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_ctx_set_target(p, tc) })
	})
}

// Target returns the context's target configuration (the secret is never
// returned: HasSecret says whether one is set; nor is a session key:
// Encrypt says the store is encrypted). ErrNoTarget when none.
func (c *Context) Target() (*TargetConfig, error) {
	var tc *C.harvbk_target_config
	if err := c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_ctx_get_target(p, &tc) })
	}); err != nil {
		return nil, err
	}
	defer C.harvbk_target_config_free(tc)
	get := func(k TargetKey) string {
		var n C.size_t
		if C.harvbk_target_config_get(tc, C.harvbk_target_key(k), nil, 0, &n) != 0 || n == 0 {
			return ""
		}
		buf := make([]byte, int(n)+1)
		C.harvbk_target_config_get(tc, C.harvbk_target_key(k), (*C.char)(unsafe.Pointer(&buf[0])),
			C.size_t(len(buf)), nil)
		return string(buf[:n])
	}
	cfg := &TargetConfig{
		URL: get(TargetURL), Endpoint: get(TargetEndpoint), Region: get(TargetRegion),
		AccessKeyID: get(TargetAccessKeyID), CACertFile: get(TargetCACertFile),
		HasSecret: C.harvbk_target_config_has_secret(tc) == 1,
		Encrypt:   get(TargetEncrypt) == "1", KeyFile: get(TargetKeyFile),
		PassphraseFile: get(TargetPassphraseFile),
	}
	for k := TargetVirtualHosted; k <= lastSettingsKey; k++ {
		if v := get(k); v != "" {
			if cfg.Settings == nil {
				cfg.Settings = map[TargetKey]string{}
			}
			cfg.Settings[k] = v
		}
	}
	return cfg, nil
}

// SetTargetSecret gives the context the S3 secret for this session only (not
// stored); "" removes it.
func (c *Context) SetTargetSecret(secret string) error {
	var cs cstrings
	defer cs.free()
	s, err := cs.addOpt(secret)
	if err != nil {
		return err
	}
	return c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_ctx_set_target_secret(p, s) })
	})
}

// CheckTarget checks that the target is reachable and holds a readable store.
func (c *Context) CheckTarget() error {
	return c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_ctx_check_target(p) })
	})
}

// SyncResult counts what a catalog sync did (Context.Sync).
type SyncResult struct {
	Imported, Updated, Gone, Forgotten, Unchanged uint64
	IndexMissing, Deleted, ManifestReads, Skipped uint64
	SyncedAt                                      time.Time
}

// Sync brings the context's backup catalog in step with the target now
// (imports backups other contexts wrote, marks vanished ones gone...).
func (c *Context) Sync() (*SyncResult, error) {
	var r *C.harvbk_sync_result
	if err := c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_target_sync(p, &r) })
	}); err != nil {
		return nil, err
	}
	defer C.harvbk_sync_result_free(r)
	n := func(k C.int) uint64 { return uint64(C.harvbk_sync_result_count(r, k)) }
	return &SyncResult{
		Imported: n(C.HARVBK_SYNC_IMPORTED), Updated: n(C.HARVBK_SYNC_UPDATED),
		Gone: n(C.HARVBK_SYNC_GONE), Forgotten: n(C.HARVBK_SYNC_FORGOTTEN),
		Unchanged: n(C.HARVBK_SYNC_UNCHANGED), IndexMissing: n(C.HARVBK_SYNC_INDEX_MISSING),
		Deleted: n(C.HARVBK_SYNC_DELETED), ManifestReads: n(C.HARVBK_SYNC_MANIFEST_READS),
		Skipped:  n(C.HARVBK_SYNC_SKIPPED),
		SyncedAt: msTime(int64(C.harvbk_sync_result_synced_at(r))),
	}, nil
}
