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

// duplicateKeys walks one value; it reports false at the first error,
// after which dec makes no more progress.
func duplicateKeys(dec *json.Decoder, path string, dups *[]string) bool {
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return false
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
			if !duplicateKeys(dec, p, dups) {
				return false
			}
		}
		_, err = dec.Token()
		return err == nil
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if !duplicateKeys(dec, fmt.Sprintf("%s[%d]", path, i), dups) {
				return false
			}
		}
		_, err = dec.Token()
		return err == nil
	}
	return true
}
