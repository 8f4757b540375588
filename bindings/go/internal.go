package harvbk

/*
#include "helpers.h"
*/
import "C"

// For the package's tests (cgo is not available in _test.go files).

// cErrorName is harvbk_error_name(c).
func cErrorName(c Code) string { return C.GoString(C.harvbk_error_name(C.int(c))) }

// cLastCode is HARVBK_ERROR_LAST_, the most negative code of the headers
// this package was compiled against.
const cLastCode = Code(C.HARVBK_ERROR_LAST_)

// openHandles is the number of cgo handles the package holds.
func openHandles() int64 { return liveHandles.Load() }
