package anthropic

import "time"

// MarshalModels returns a GET /v1/models answer in the Anthropic shape: a page
// holding every model, each with its id as display name and created as its
// creation time.
func MarshalModels(names []string, created time.Time) []byte {
	ts := created.UTC().Format(time.RFC3339)
	b := make([]byte, 0, 64+len(names)*96)
	b = append(b, `{"data":[`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"model","id":`...)
		b = appendString(b, name)
		b = append(b, `,"display_name":`...)
		b = appendString(b, name)
		b = append(b, `,"created_at":"`...)
		b = append(b, ts...)
		b = append(b, `"}`...)
	}
	b = append(b, `],"has_more":false,"first_id":`...)
	if len(names) > 0 {
		b = appendString(b, names[0])
		b = append(b, `,"last_id":`...)
		b = appendString(b, names[len(names)-1])
	} else {
		b = append(b, `null,"last_id":null`...)
	}
	return append(b, '}')
}
