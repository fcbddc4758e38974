package jsonw

import "github.com/sluice-gw/sluice"

// AppendErrorDetails appends Sluice's extensions to an error object of
// either dialect: ,"details":[{"path":...,"reason":...}...] when err has
// details, and ,"raw_output":... when it carries the model's raw answer (a
// route that opted in). Nothing otherwise.
func AppendErrorDetails(b []byte, err *sluice.Error) []byte {
	if err == nil {
		return b
	}
	if len(err.Details) > 0 {
		b = append(b, `,"details":[`...)
		for i, d := range err.Details {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"path":`...)
			b = AppendString(b, d.Path)
			b = append(b, `,"reason":`...)
			b = AppendString(b, d.Reason)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if err.Output != "" {
		b = append(b, `,"raw_output":`...)
		b = AppendString(b, err.Output)
	}
	return b
}
