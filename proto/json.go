package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// DuplicateKeys returns the path of every key that an object in the JSON
// text b holds twice ("relay.limits.queue", "rooms[2].name"), in the
// order met. encoding/json takes the last of them silently; roomrelay's
// config and hello refuse them instead. Invalid JSON gives what was found
// up to the error.
func DuplicateKeys(b []byte) []string {
	var dups []string
	duplicateKeys(json.NewDecoder(bytes.NewReader(b)), "", &dups)
	return dups
}

func duplicateKeys(dec *json.Decoder, path string, dups *[]string) {
	tok, err := dec.Token()
	if err != nil {
		return
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return
			}
			k, _ := kt.(string)
			p := k
			if path != "" {
				p = path + "." + k
			}
			if seen[k] {
				*dups = append(*dups, p)
			}
			seen[k] = true
			duplicateKeys(dec, p, dups)
		}
		dec.Token()
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			duplicateKeys(dec, fmt.Sprintf("%s[%d]", path, i), dups)
		}
		dec.Token()
	}
}
