package harvbk

/*
#include "helpers.h"
*/
import "C"

// Image is a VM image of the context's registry: NAMESPACE/NAME with an
// optional display name, URL and checksum.
type Image struct {
	Namespace   string
	Name        string
	DisplayName string
	URL         string
	Checksum    string // SHA-256 or SHA-512, hex
}

func imageFromC(p *C.harvbk_image) Image {
	return Image{
		Namespace:   gostr(C.harvbk_image_namespace(p)),
		Name:        gostr(C.harvbk_image_name(p)),
		DisplayName: gostr(C.harvbk_image_display_name(p)),
		URL:         gostr(C.harvbk_image_url(p)),
		Checksum:    gostr(C.harvbk_image_checksum(p)),
	}
}

// RegisterImage saves img in the registry, replacing an image of the same
// namespace/name (ErrExists: another image has its display name).
func (c *Context) RegisterImage(img Image) error {
	var cs cstrings
	defer cs.free()
	var s [5]*C.char
	for i, v := range []string{img.Namespace, img.Name, img.DisplayName, img.URL, img.Checksum} {
		var err error
		if i < 2 {
			s[i], err = cs.add(v)
		} else {
			s[i], err = cs.addOpt(v)
		}
		if err != nil {
			return err
		}
	}
	var ci *C.harvbk_image
	if err := call(func() C.int { return C.harvbk_image_new(&ci, s[0], s[1]) }); err != nil {
		return err
	}
	defer C.harvbk_image_free(ci)
	if err := call(func() C.int { return C.harvbk_image_set_display_name(ci, s[2]) }); err != nil {
		return err
	}
	if err := call(func() C.int { return C.harvbk_image_set_url(ci, s[3]) }); err != nil {
		return err
	}
	if err := call(func() C.int { return C.harvbk_image_set_checksum(ci, s[4]) }); err != nil {
		return err
	}
	return c.do(func(p *C.harvbk_ctx) error {
		return call(func() C.int { return C.harvbk_image_register(p, ci) })
	})
}

// LookupImage loads registered image namespace/name (ErrNotFound).
func (c *Context) LookupImage(namespace, name string) (*Image, error) {
	var out *Image
	err := c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		var ci *C.harvbk_image
		if err := call(func() C.int { return C.harvbk_image_lookup(&ci, p, ns, n) }); err != nil {
			return err
		}
		defer C.harvbk_image_free(ci)
		img := imageFromC(ci)
		out = &img
		return nil
	})
	return out, err
}

// UnregisterImage removes an image from the registry (ErrNotFound).
func (c *Context) UnregisterImage(namespace, name string) error {
	return c.withNames(namespace, name, func(p *C.harvbk_ctx, ns, n *C.char) error {
		return call(func() C.int { return C.harvbk_image_unregister(p, ns, n) })
	})
}

// Images lists the registered images, sorted by namespace then name.
func (c *Context) Images() ([]Image, error) {
	var out []Image
	err := c.do(func(p *C.harvbk_ctx) error {
		var l *C.harvbk_image_list
		if err := call(func() C.int { return C.harvbk_image_list_get(&l, p) }); err != nil {
			return err
		}
		defer C.harvbk_image_list_free(l)
		n := int(C.harvbk_image_list_count(l))
		for i := 0; i < n; i++ {
			out = append(out, imageFromC(C.harvbk_image_list_at(l, C.size_t(i))))
		}
		return nil
	})
	return out, err
}

// SetImageHook sets the hook that recreates an image a restore needs and
// this context lacks (nil clears it). It runs on the goroutine calling
// Restore/StartRestore, inside that call; returning nil means the image now
// exists (the library registers it unless the hook did), an error (or a
// panic) refuses: the restore fails with ErrImage wrapping that error.
func (c *Context) SetImageHook(hook func(img Image) error) error {
	return c.do(func(p *C.harvbk_ctx) error {
		var h C.uintptr_t
		if hook != nil {
			gh := newHandle(&imageHook{fn: hook})
			c.keepHandle(gh) // a restore may still run the previous hook: all live until Close
			h = C.uintptr_t(gh)
		}
		var msg *C.char
		rc := C.hbgo_set_image_hook(p, boolInt(hook != nil), h, &msg)
		return errFromMsg(rc, msg)
	})
}
