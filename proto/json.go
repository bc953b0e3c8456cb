package proto

import "roomrelay/internal/jsonlite"

// DuplicateKeys returns the path of every key that an object in the JSON
// text b holds twice ("relay.limits.queue", "rooms[2].name"), in the
// order met. encoding/json takes the last of them silently; roomrelay's
// config and hello refuse them instead. Invalid JSON gives what was found
// up to the error.
func DuplicateKeys(b []byte) []string {
	_, _, dups, _ := jsonlite.Parse(b)
	return dups
}
