package client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecret is the longest secret ReadSecret takes, in bytes: it must fit
// a line of the relay's with the command before it.
const maxSecret = 512

// ReadSecret reads a secret for `roomrelay passwd`: the first line of in.
// When in is a terminal it asks on prompt, twice, with echo off where it
// can (Linux), and says so where it cannot; otherwise it asks nothing.
// A secret is not empty and neither starts nor ends with a space, which
// no client could send.
func ReadSecret(in io.Reader, prompt io.Writer) (string, error) {
	f, _ := in.(*os.File)
	if f == nil || !isTerminal(f) {
		return readSecretLine(bufio.NewReader(in))
	}
	restore, err := noEcho(f)
	if err != nil {
		fmt.Fprintf(prompt, "warning: %v: what you type shows\n", err)
	} else {
		defer restore()
	}
	r := bufio.NewReader(f)
	fmt.Fprint(prompt, "secret: ")
	s, err := readSecretLine(r)
	if err != nil {
		return "", err
	}
	fmt.Fprint(prompt, "again: ")
	again, err := readSecretLine(r)
	if err != nil {
		return "", err
	}
	if again != s {
		return "", errors.New("the two differ")
	}
	return s, nil
}

func readSecretLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		if err == io.EOF {
			return "", errors.New("no secret on the input")
		}
		return "", err
	}
	s := strings.TrimRight(line, "\r\n")
	switch {
	case s == "":
		return "", errors.New("the secret is empty")
	case len(s) > maxSecret:
		return "", fmt.Errorf("the secret is over %d bytes", maxSecret)
	case strings.TrimSpace(s) != s:
		return "", errors.New("the secret starts or ends with a space, which no client could send")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", errors.New("the secret holds a control character")
	}
	return s, nil
}
