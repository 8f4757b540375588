package harvbk

/*
#include "helpers.h"
*/
import "C"

// Quota is the snapshot space limit and usage of a namespace or a VM.
type Quota struct {
	HasLimit bool
	Limit    uint64 // bytes (0 when HasLimit is false)
	Usage    uint64 // stored bytes of the distinct chunks of its Ready snapshots
}

// QuotaEntry is one namespace (VM "") or VM of Context.Quotas.
type QuotaEntry struct {
	Namespace string
	VM        string
	Quota
	Snapshots int // Ready snapshots counted
}

// quotaNames converts namespace and vm ("": the namespace itself).
func (c *Context) quotaNames(namespace, vm string, f func(p *C.harvbk_ctx, ns, v *C.char) error) error {
	var cs cstrings
	defer cs.free()
	ns, err := cs.add(namespace)
	if err != nil {
		return err
	}
	v, err := cs.addOpt(vm)
	if err != nil {
		return err
	}
	return c.do(func(p *C.harvbk_ctx) error { return f(p, ns, v) })
}

// SetQuota limits the snapshot space of namespace (vm "") or of VM
// namespace/vm to limit bytes (0: no snapshot may be taken). Snapshots (and
// backups) of a VM at or over a limit fail with ErrQuotaExceeded.
func (c *Context) SetQuota(namespace, vm string, limit uint64) error {
	return c.quotaNames(namespace, vm, func(p *C.harvbk_ctx, ns, v *C.char) error {
		return call(func() C.int { return C.harvbk_quota_set(p, ns, v, C.uint64_t(limit)) })
	})
}

// ClearQuota removes the limit of a namespace (vm "") or VM (ErrNotFound
// when none was set).
func (c *Context) ClearQuota(namespace, vm string) error {
	return c.quotaNames(namespace, vm, func(p *C.harvbk_ctx, ns, v *C.char) error {
		return call(func() C.int { return C.harvbk_quota_clear(p, ns, v) })
	})
}

// Quota returns the limit and usage of a namespace (vm "") or VM.
func (c *Context) Quota(namespace, vm string) (Quota, error) {
	var has C.int
	var limit, usage C.uint64_t
	err := c.quotaNames(namespace, vm, func(p *C.harvbk_ctx, ns, v *C.char) error {
		return call(func() C.int { return C.harvbk_quota_get(p, ns, v, &has, &limit, &usage) })
	})
	return Quota{HasLimit: has == 1, Limit: uint64(limit), Usage: uint64(usage)}, err
}

// Quotas lists every namespace and VM that has a limit or snapshots.
func (c *Context) Quotas() ([]QuotaEntry, error) {
	var out []QuotaEntry
	err := c.do(func(p *C.harvbk_ctx) error {
		var l *C.harvbk_quota_list
		if err := call(func() C.int { return C.harvbk_quota_list_get(&l, p) }); err != nil {
			return err
		}
		defer C.harvbk_quota_list_free(l)
		n := int(C.harvbk_quota_list_count(l))
		for i := 0; i < n; i++ {
			j := C.size_t(i)
			out = append(out, QuotaEntry{
				Namespace: gostr(C.harvbk_quota_list_namespace(l, j)),
				VM:        gostr(C.harvbk_quota_list_vm(l, j)),
				Quota: Quota{
					HasLimit: C.harvbk_quota_list_has_limit(l, j) == 1,
					Limit:    uint64(C.harvbk_quota_list_limit(l, j)),
					Usage:    uint64(C.harvbk_quota_list_usage(l, j)),
				},
				Snapshots: int(C.harvbk_quota_list_snapshots(l, j)),
			})
		}
		return nil
	})
	return out, err
}
