package jsonw

import "github.com/sluice-gw/sluice"

// AppendErrorDetails appends Sluice's extension to an error object of
// either dialect, ,"details":[{"path":...,"reason":...}...], when there are
// details; nothing otherwise.
func AppendErrorDetails(b []byte, ds []sluice.ErrorDetail) []byte {
	if len(ds) == 0 {
		return b
	}
	b = append(b, `,"details":[`...)
	for i, d := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"path":`...)
		b = AppendString(b, d.Path)
		b = append(b, `,"reason":`...)
		b = AppendString(b, d.Reason)
		b = append(b, '}')
	}
	return append(b, ']')
}
