package proto

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  string // substring of the error; "" for a valid name
	}{
		{name: "alice"}, {name: "Bob_2"}, {name: "a.b-c"}, {name: "9lives"}, {name: "Jean-Luc"},
		{name: "J.R. Smith"}, {name: "mary-jane_2."}, {name: "a_ b"},
		{name: strings.Repeat("x", MaxName)},
		{name: "first client"}, {name: "élodie"}, {name: "Zoë"}, {name: "Ελένη"}, {name: "Иван"},
		{name: "山田"}, {name: "山田たろう"}, {name: "山田 たろう"}, {name: "ラーメン"}, {name: "らーめん"},
		{name: "김민준"}, {name: "金민준"}, {name: "ＡＢＣ"},
		{name: "राम"}, {name: "क़ीं"}, {name: "สมชาย"}, {name: "محمد"}, {name: "יוֹסֵף"},
		{name: strings.Repeat("山", MaxName)},          // 72 bytes
		{name: strings.Repeat("\U00020000", MaxName)}, // 𠀀, MaxNameBytes bytes

		{name: "", err: "empty name"},
		{name: strings.Repeat("x", MaxName+1), err: "name longer than 24 characters"},
		{name: strings.Repeat("山", MaxName+1), err: "name longer than 24 characters"},
		{name: "e\u0301lodie", err: "name \"e\u0301\" must be written as one character, not \"e\" + a combining mark (U+0301 at character 2)"},
		{name: "か\u3099", err: "\"か\u3099\" must be written as one character"},
		{name: "\u0301a", err: "combining mark (U+0301) on no letter at character 1"},
		{name: "7\u20e3", err: "combining mark (U+20E3) on no letter at character 2"},
		{name: "क\u093c\u093f\u0902\u0902", err: "more than 3 marks on one letter at character 5"},
		{name: "क\u0e48", err: "mixes Devanagari and Thai letters"},
		{name: "\u0430lice", err: "name mixes Latin and Cyrillic letters ('а' at character 1 is Cyrillic)"},
		{name: "Ива\u043dn", err: "mixes Cyrillic and Latin letters ('n' at character 5 is Latin)"},
		{name: "山田ab", err: "mixes Han and Latin letters"},
		{name: "たろう김", err: "mixes Hiragana and Hangul letters"},
		{name: "aー", err: "mixes Latin and Katakana letters"},
		{name: "al\u200bice", err: "invisible or formatting character (U+200B) at character 3"},
		{name: "\u202ealice", err: "invisible or formatting character (U+202E) at character 1"},
		{name: "a\u200db", err: "(U+200D)"},
		{name: "a\u00adb", err: "(U+00AD)"},
		{name: "a\ufe0f", err: "(U+FE0F)"},
		{name: "\u3164", err: "(U+3164)"},
		{name: "ᄀ\u1161", err: "spells a Hangul syllable in parts"},
		{name: "a  b", err: "name has two spaces in a row"},
		{name: " alice", err: "name starts with a space"},
		{name: "alice ", err: "name ends with a space"},
		{name: "a\u00a0b", err: "name may hold only plain spaces (not U+00A0)"},
		{name: "a\tb", err: "name may hold only plain spaces (not U+0009)"},
		{name: "a!", err: "name may hold only letters, digits, spaces, _ - and . (not '!')"},
		{name: "!a", err: "name may hold only letters, digits, spaces, _ - and . (not '!')"},
		{name: "o'brien", err: "(not '\\'')"},
		{name: "a:b", err: "(not ':')"},
		{name: "a|b", err: "(not '|')"},
		{name: "_a", err: "name must start with a letter or digit (not '_')"},
		{name: "-a", err: "name must start with a letter or digit (not '-')"},
		{name: "𝐚lice", err: "name holds '𝐚' (U+1D41A), a symbol, not a letter of any one script"},
		{name: "ℓuc", err: "(U+2113), a symbol"},
		{name: "a\xffb", err: "name is not valid UTF-8 (byte 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckName(tc.name)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("CheckName(%q) = %v, want nil", tc.name, err)
			case tc.err == "":
				return
			case err == nil || !strings.Contains(err.Error(), tc.err):
				t.Fatalf("CheckName(%q) = %v, want an error containing %q", tc.name, err, tc.err)
			case !errors.Is(err, ErrBadName):
				t.Errorf("CheckName(%q) error %v does not wrap ErrBadName", tc.name, err)
			case strings.Contains(err.Error(), "must start") && !strings.Contains(tc.err, "must start"):
				t.Errorf("CheckName(%q) = %v: names a rule it did not break", tc.name, err)
			}
		})
	}
}

func TestCheckRoom(t *testing.T) {
	for _, tc := range []struct{ room, err string }{
		{room: "kitchen"}, {room: "Küche"}, {room: "台所"}, {room: strings.Repeat("x", MaxRoom)},
		{room: strings.Repeat("x", MaxRoom+1), err: "invalid name: room name longer than 32 characters"},
		{room: "big kitchen", err: "invalid name: room names have no spaces"},
		{room: "big\tkitchen", err: "invalid name: room names have no spaces"},
		{room: "a!b", err: "invalid name: room name may hold only letters, digits, _ - and . (not '!')"},
		{room: "k\u0456tchen", err: "invalid name: room name mixes Latin and Cyrillic letters"},
	} {
		err := CheckRoom(tc.room)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckRoom(%q) = %v, want %q", tc.room, err, tc.err)
		}
	}
}

func TestFold(t *testing.T) {
	want := map[string]string{
		"alice": "alice", "AliCe": "alice",
		"first client": "first_client", "First_Client": "first_client",
		"ａｌｉｃｅ": "alice", "ＢＯＢ１": "bob1", "bob\u0967": "bob1", // full width, a Devanagari 1
		"\u0430\u0441\u0441\u0435": "acce", "АССЕ": "acce", // all Cyrillic
		"ΑΒΕ": "abe", "οκ": "ok", // all Greek
		"ΣΊΣΥΦΟΣ": "σίσuφoσ", "σίσυφος": "σίσuφoσ", // final sigma
		"İstanbul": "istanbul", "ıstanbul": "istanbul", "\u212aate": "kate", // İ, dotless ı, Kelvin sign
		"élodie": "élodie", "ÉLODIE": "élodie", "山田": "山田",
	}
	got := map[string]string{}
	for in := range want {
		got[in] = Fold(in)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Fold (-want +got):\n%s", diff)
	}
	// Names that must stay apart.
	for _, p := range [][2]string{
		{"bob", "bob1"}, {"alice", "alicia"}, {"first client", "firstclient"},
		{"a-b", "a_b"}, {"a.b", "a_b"}, {"élodie", "elodie"}, {"山田", "山口"},
	} {
		if Fold(p[0]) == Fold(p[1]) {
			t.Errorf("Fold(%q) == Fold(%q) == %q", p[0], p[1], Fold(p[0]))
		}
	}
}

// TestLookalikes checks each entry of the table: its key is a lower-case
// letter as Fold leaves it, and the letter, small or capital, folds to
// its basic Latin look-alike.
func TestLookalikes(t *testing.T) {
	pairs := map[rune]rune{}
	for i := 0; i < len(lookalikes); {
		k, n := utf8.DecodeRuneInString(lookalikes[i:])
		if _, ok := pairs[k]; ok || k < utf8.RuneSelf || i+n >= len(lookalikes) {
			t.Fatalf("lookalikes at byte %d: %q is no new letter with a look-alike after it", i, k)
		}
		pairs[k] = rune(lookalikes[i+n])
		i += n + 1
	}
	if len(pairs) > 60 {
		t.Errorf("the look-alike table has %d entries; it is meant to be small", len(pairs))
	}
	for k, v := range pairs {
		if !unicode.IsLower(k) || caseKey(k) != k {
			t.Errorf("key %q (%U) is not its own lower-case key %q", k, k, caseKey(k))
		}
		if sc := script(k); sc != "Latin" && sc != "Greek" && sc != "Cyrillic" {
			t.Errorf("key %q is %s", k, sc)
		}
		if v < 'a' || v > 'z' {
			t.Errorf("%q maps to %q, not a basic Latin small letter", k, v)
		}
		for _, r := range []rune{k, unicode.ToUpper(k)} {
			if got := Fold(string(r)); got != string(v) {
				t.Errorf("Fold(%q) = %q, want %q", r, got, v)
			}
		}
	}
}

// TestFoldEveryRune checks every code point: folding it again changes
// nothing, and its other cases fold the same.
func TestFoldEveryRune(t *testing.T) {
	bad := 0
	for r := rune(0); r <= unicode.MaxRune && bad < 10; r++ {
		f := foldRune(r)
		if g := foldRune(f); g != f {
			bad++
			t.Errorf("%U folds to %U, which folds to %U", r, f, g)
		}
		if u, l := foldRune(unicode.ToUpper(r)), foldRune(unicode.ToLower(r)); u != f || l != f {
			bad++
			t.Errorf("%U folds to %U, its upper case to %U, its lower case to %U", r, f, u, l)
		}
	}
}

func TestDigit(t *testing.T) {
	for _, rg := range unicode.Nd.R16 {
		if rg.Stride != 1 || (rg.Hi-rg.Lo+1)%10 != 0 {
			t.Errorf("digits %U-%U are not whole rows of ten", rg.Lo, rg.Hi)
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rg.Stride != 1 || (rg.Hi-rg.Lo+1)%10 != 0 {
			t.Errorf("digits %U-%U are not whole rows of ten", rg.Lo, rg.Hi)
		}
	}
	got := map[rune]rune{}
	for _, r := range "0٣७๙𝟡" {
		got[r], _ = digit(r)
	}
	if diff := cmp.Diff(map[rune]rune{'0': 0, '٣': 3, '७': 7, '๙': 9, '𝟡': 9}, got); diff != "" {
		t.Errorf("digit (-want +got):\n%s", diff)
	}
}

func TestFoldAllocs(t *testing.T) {
	for _, s := range []string{"first_client", "alice.b-2", "élodie", "山田"} {
		if n := testing.AllocsPerRun(100, func() { Fold(s) }); n != 0 {
			t.Errorf("Fold(%q) allocates %v times", s, n)
		}
	}
}

// FuzzName checks that CheckName never panics, and that what it accepts
// folds to a key that folds to itself, that ignores case and spaces
// written as '_', and is valid UTF-8.
func FuzzName(f *testing.F) {
	file, err := os.Open("testdata/names.txt")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			s, err := strconv.Unquote(l)
			if err != nil {
				f.Fatalf("testdata/names.txt: %s: %v", l, err)
			}
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		room := CheckRoom(s)
		if CheckName(s) != nil {
			if room == nil && utf8.RuneCountInString(s) <= MaxName {
				t.Fatalf("%q is a room name but no member name", s)
			}
			return
		}
		key := Fold(s)
		if again := Fold(key); again != key {
			t.Fatalf("Fold(%q) = %q, but Fold(%q) = %q", s, key, key, again)
		}
		if !utf8.ValidString(key) || strings.Contains(key, " ") {
			t.Fatalf("Fold(%q) = %q", s, key)
		}
		for _, v := range []string{strings.ToUpper(s), strings.ToLower(s), strings.ReplaceAll(s, " ", "_")} {
			if Fold(v) != key {
				t.Fatalf("Fold(%q) = %q, but Fold(%q) = %q", s, key, v, Fold(v))
			}
		}
		if room == nil && strings.Contains(s, " ") {
			t.Fatalf("room name %q has a space", s)
		}
	})
}

// TestAllScripts: allScripts is unicode.Scripts, every script once, so
// script names each character as unicode.Scripts would.
func TestAllScripts(t *testing.T) {
	got := map[string]*unicode.RangeTable{}
	for _, sc := range allScripts {
		if _, ok := got[sc.name]; ok {
			t.Errorf("%s listed twice", sc.name)
		}
		got[sc.name] = *sc.tab
	}
	for name, tab := range unicode.Scripts {
		if got[name] != tab {
			t.Errorf("allScripts[%q] is not unicode.%s", name, name)
		}
	}
	if len(got) != len(unicode.Scripts) {
		t.Errorf("allScripts has %d scripts, unicode.Scripts %d", len(got), len(unicode.Scripts))
	}
}
