package proto

import (
	"errors"
	"roomrelay/internal/fmtlite"
	"unicode"
	"unicode/utf8"
)

// Name and room limits. A name is counted in characters (code points); its
// bytes are bounded too, since UTF-8 takes up to 4 bytes a character.
const (
	MaxName      = 24                    // characters of a member name
	MaxRoom      = 32                    // characters of a room name
	MaxNameBytes = MaxName * utf8.UTFMax // bytes of a member name, at most
	MaxRoomBytes = MaxRoom * utf8.UTFMax // bytes of a room name, at most
)

// ErrBadName is wrapped by every name and room validation error.
var ErrBadName = errors.New("invalid name")

// CheckName reports whether s is a valid member name, and if not, what is
// wrong with it. A name is 1 to MaxName characters: letters of any one
// writing system, decimal digits, '_', '-', '.' and single spaces inside
// it. It starts with a letter or digit and has no space at either end
// (callers trim what people type). Refused because they only deceive:
//
//   - letters of two scripts in one name ("аlice" with a Cyrillic а).
//     Han, Hiragana and Katakana are one writing system (Japanese), and
//     Han and Hangul another (Korean); digits, '_', '-', '.' and spaces
//     belong to none.
//   - combining marks on letters of the scripts that write every accented
//     letter as one character (Latin, Greek, Cyrillic, Armenian, Georgian,
//     Han, kana, Hangul), so "é" is one code point, not e + ◌́; marks on
//     no letter; more than three marks on one letter. Scripts written
//     with marks (Devanagari, Thai, Arabic, Hebrew...) keep theirs.
//   - Hangul syllables spelt out in conjoining jamo, for the same reason.
//   - invisible and format characters: zero-width spaces and joiners, the
//     soft hyphen, bidirectional controls, variation selectors, Hangul
//     fillers.
//   - letters of no script of their own: mathematical and letter-like
//     symbols (𝐚, ℓ), modifier letters such as ˈ. The Japanese prolonged
//     sound mark ー and its kin count as kana.
//   - every other symbol, punctuation and space character.
//
// Names are unique under [Fold], which also ignores case and look-alikes.
func CheckName(s string) error { return check("name", s, MaxName, true) }

// CheckRoom is [CheckName] for room names, which may be up to MaxRoom
// characters and have no spaces.
func CheckRoom(s string) error { return check("room name", s, MaxRoom, false) }

// Marks are refused on letters of these scripts: Unicode has each
// accented letter of theirs as a character of its own.
func precomposed(script string) bool {
	switch script {
	case "Latin", "Greek", "Cyrillic", "Armenian", "Georgian", "Han", "Hiragana", "Katakana", "Hangul":
		return true
	}
	return false
}

// maxMarks is how many combining marks one letter may carry where marks
// are allowed at all (a Devanagari consonant with nukta, vowel sign and
// anusvara has three).
const maxMarks = 3

// badName is the error for a name that breaks a rule: ErrBadName, what
// the name is, and why. (Not inlined: check says it from many places.)
//
//go:noinline
func badName(what, format string, a ...any) error {
	return fmtlite.Errorf("%w: %s "+format, append([]any{ErrBadName, what}, a...)...)
}

func check(what, s string, max int, spaces bool) error {
	bad := func(format string, a ...any) error { return badName(what, format, a...) }
	if s == "" {
		return fmtlite.Errorf("%w: empty %s", ErrBadName, what)
	}
	if len(s) > max*utf8.UTFMax || utf8.RuneCountInString(s) > max {
		return bad("longer than %d characters", max)
	}
	if plain(s, spaces) {
		return nil
	}
	var (
		seen  [3]string // the scripts of its letters so far
		nseen int
		base  string // the script of the letter marks would sit on, "" for none
		at    int    // where that letter starts
		marks int    // marks on it so far
		prev  rune
		n     int // characters so far
	)
	for i, r := range s {
		n++
		switch {
		case r == utf8.RuneError && invalidAt(s, i):
			return bad("is not valid UTF-8 (byte %d)", i+1)
		case unicode.IsSpace(r):
			switch {
			case !spaces:
				return fmtlite.Errorf("%w: room names have no spaces", ErrBadName)
			case r != ' ':
				return bad("may hold only plain spaces (not U+%04X)", r)
			case n == 1:
				return bad("starts with a space")
			case prev == ' ':
				return bad("has two spaces in a row")
			}
			base = ""
		case invisible(r):
			return bad("holds an invisible or formatting character (U+%04X) at character %d", r, n)
		case unicode.Is(unicode.M, r):
			sc := script(r)
			switch {
			case base == "":
				return bad("holds a combining mark (U+%04X) on no letter at character %d", r, n)
			case precomposed(base):
				return bad("%q must be written as one character, not %q + a combining mark (U+%04X at character %d)",
					s[at:i+utf8.RuneLen(r)], s[at:i], r, n)
			case sc != base && sc != "Inherited" && sc != "Common":
				return bad("mixes %s and %s letters", base, sc)
			}
			if marks++; marks > maxMarks {
				return bad("has more than %d marks on one letter at character %d", maxMarks, n)
			}
		case unicode.IsLetter(r):
			sc := letterScript(r)
			switch {
			case jamo(r):
				return bad("spells a Hangul syllable in parts (U+%04X at character %d): write each syllable as one character", r, n)
			case sc == "Common" || sc == "Inherited":
				return bad("holds %q (U+%04X), a symbol, not a letter of any one script", r, r)
			}
			if !has(seen[:nseen], sc) {
				for _, x := range seen[:nseen] {
					if !together(x, sc) {
						return mixed(bad, s, x, sc)
					}
				}
				if nseen < len(seen) {
					seen[nseen] = sc
					nseen++
				}
			}
			base, at, marks = sc, i, 0
		case unicode.IsDigit(r):
			base = ""
		case r == '_' || r == '-' || r == '.':
			if n == 1 {
				return bad("must start with a letter or digit (not %q)", r)
			}
			base = ""
		case spaces:
			return bad("may hold only letters, digits, spaces, _ - and . (not %q)", r)
		default:
			return bad("may hold only letters, digits, _ - and . (not %q)", r)
		}
		prev = r
	}
	if prev == ' ' {
		return bad("ends with a space")
	}
	return nil
}

// plain reports whether s is a valid name of ASCII only: the common case,
// checked quickly. Where it is not, check looks closer.
func plain(s string, spaces bool) bool {
	if !alnum(s[0]) || s[len(s)-1] == ' ' {
		return false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case alnum(c) || c == '_' || c == '-' || c == '.':
		case c == ' ' && spaces && s[i-1] != ' ':
		default:
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// mixed is the error for s, which mixes letters of scripts a and b: it
// names the script of most of them first, then the first letter of the
// other, which is likely the one that deceives ("аlice" has a Cyrillic а).
func mixed(bad func(string, ...any) error, s, a, b string) error {
	var na, nb int
	for _, r := range s {
		if unicode.IsLetter(r) {
			switch letterScript(r) {
			case a:
				na++
			case b:
				nb++
			}
		}
	}
	if nb > na {
		a, b = b, a
	}
	n := 0
	for _, r := range s {
		if n++; unicode.IsLetter(r) && letterScript(r) == b {
			return bad("mixes %s and %s letters (%q at character %d is %s)", a, b, r, n, b)
		}
	}
	return bad("mixes %s and %s letters", a, b)
}

// invalidAt reports whether s holds an invalid UTF-8 sequence at i, as
// opposed to an encoded U+FFFD.
func invalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 1
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// together reports whether letters of scripts a and b may share a name:
// one script, or one writing system (Japanese: Han, Hiragana, Katakana;
// Korean: Han, Hangul).
func together(a, b string) bool {
	if a == b {
		return true
	}
	if a > b {
		a, b = b, a
	}
	switch a + "+" + b {
	case "Han+Hiragana", "Han+Katakana", "Hiragana+Katakana", "Han+Hangul":
		return true
	}
	return false
}

// invisible reports whether r shows nothing, or changes how its neighbours
// show, while being allowed by the other rules: format characters (Cf:
// zero-width space, joiners, soft hyphen, bidirectional controls),
// variation selectors, the combining grapheme joiner, the Khmer inherent
// vowels, the Mongolian variation selectors and the Hangul fillers.
func invisible(r rune) bool {
	switch {
	case r < 0xad:
		return false
	case unicode.Is(unicode.Cf, r),
		0xfe00 <= r && r <= 0xfe0f, 0xe0100 <= r && r <= 0xe01ef, // variation selectors
		r == 0x34f,               // combining grapheme joiner
		r == 0x17b4, r == 0x17b5, // Khmer inherent vowels
		0x180b <= r && r <= 0x180f,                         // Mongolian variation selectors
		r == 0x115f, r == 0x1160, r == 0x3164, r == 0xffa0: // Hangul fillers
		return true
	}
	return false
}

// jamo reports whether r is a conjoining Hangul jamo: a part of a syllable
// that Unicode also has whole.
func jamo(r rune) bool {
	return 0x1100 <= r && r <= 0x11ff || 0xa960 <= r && r <= 0xa97f || 0xd7b0 <= r && r <= 0xd7ff
}

// letterScript is the script of a letter. The letters of Unicode's Common
// script that only Japanese uses count as Katakana: the prolonged sound
// mark ー (and its half-width form), the iteration marks 〱 to 〵, 〆, 〼,
// and the half-width voicing marks.
func letterScript(r rune) string {
	switch r {
	case 0x30fc, 0xff70, 0x3006, 0x303c, 0xff9e, 0xff9f, 0x3031, 0x3032, 0x3033, 0x3034, 0x3035:
		return "Katakana"
	}
	return script(r)
}

// scripts are the tables script tries first, the common ones.
var scripts = []struct {
	name string
	tab  *unicode.RangeTable
}{
	{"Latin", unicode.Latin}, {"Cyrillic", unicode.Cyrillic}, {"Greek", unicode.Greek},
	{"Han", unicode.Han}, {"Hiragana", unicode.Hiragana}, {"Katakana", unicode.Katakana},
	{"Hangul", unicode.Hangul}, {"Inherited", unicode.Inherited}, {"Common", unicode.Common},
	{"Arabic", unicode.Arabic}, {"Hebrew", unicode.Hebrew}, {"Devanagari", unicode.Devanagari},
	{"Thai", unicode.Thai},
}

// script returns the name of the Unicode script of r, as [unicode.Scripts]
// names it, or "Unknown".
func script(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return "Common"
	}
	for _, sc := range scripts {
		if unicode.Is(sc.tab, r) {
			return sc.name
		}
	}
	for _, sc := range allScripts { // the scripts are disjoint: any order gives the same answer
		if unicode.Is(*sc.tab, r) {
			return sc.name
		}
	}
	return "Unknown"
}

// allScripts is [unicode.Scripts] as a list: a map of that size is built
// by code at start-up, about 25 KB of a mipsle binary. It points at the
// tables' variables, so that the list is data the linker writes, not
// code run at start-up (10 KB more). TestAllScripts checks that it names
// every script.
var allScripts = []struct {
	name string
	tab  **unicode.RangeTable
}{
	{"Adlam", &unicode.Adlam}, {"Ahom", &unicode.Ahom},
	{"Anatolian_Hieroglyphs", &unicode.Anatolian_Hieroglyphs}, {"Arabic", &unicode.Arabic},
	{"Armenian", &unicode.Armenian}, {"Avestan", &unicode.Avestan}, {"Balinese", &unicode.Balinese},
	{"Bamum", &unicode.Bamum}, {"Bassa_Vah", &unicode.Bassa_Vah}, {"Batak", &unicode.Batak},
	{"Bengali", &unicode.Bengali}, {"Bhaiksuki", &unicode.Bhaiksuki}, {"Bopomofo", &unicode.Bopomofo},
	{"Brahmi", &unicode.Brahmi}, {"Braille", &unicode.Braille}, {"Buginese", &unicode.Buginese},
	{"Buhid", &unicode.Buhid}, {"Canadian_Aboriginal", &unicode.Canadian_Aboriginal},
	{"Carian", &unicode.Carian}, {"Caucasian_Albanian", &unicode.Caucasian_Albanian},
	{"Chakma", &unicode.Chakma}, {"Cham", &unicode.Cham}, {"Cherokee", &unicode.Cherokee},
	{"Chorasmian", &unicode.Chorasmian}, {"Common", &unicode.Common}, {"Coptic", &unicode.Coptic},
	{"Cuneiform", &unicode.Cuneiform}, {"Cypriot", &unicode.Cypriot},
	{"Cypro_Minoan", &unicode.Cypro_Minoan}, {"Cyrillic", &unicode.Cyrillic},
	{"Deseret", &unicode.Deseret}, {"Devanagari", &unicode.Devanagari},
	{"Dives_Akuru", &unicode.Dives_Akuru}, {"Dogra", &unicode.Dogra}, {"Duployan", &unicode.Duployan},
	{"Egyptian_Hieroglyphs", &unicode.Egyptian_Hieroglyphs}, {"Elbasan", &unicode.Elbasan},
	{"Elymaic", &unicode.Elymaic}, {"Ethiopic", &unicode.Ethiopic}, {"Georgian", &unicode.Georgian},
	{"Glagolitic", &unicode.Glagolitic}, {"Gothic", &unicode.Gothic}, {"Grantha", &unicode.Grantha},
	{"Greek", &unicode.Greek}, {"Gujarati", &unicode.Gujarati},
	{"Gunjala_Gondi", &unicode.Gunjala_Gondi}, {"Gurmukhi", &unicode.Gurmukhi}, {"Han", &unicode.Han},
	{"Hangul", &unicode.Hangul}, {"Hanifi_Rohingya", &unicode.Hanifi_Rohingya},
	{"Hanunoo", &unicode.Hanunoo}, {"Hatran", &unicode.Hatran}, {"Hebrew", &unicode.Hebrew},
	{"Hiragana", &unicode.Hiragana}, {"Imperial_Aramaic", &unicode.Imperial_Aramaic},
	{"Inherited", &unicode.Inherited}, {"Inscriptional_Pahlavi", &unicode.Inscriptional_Pahlavi},
	{"Inscriptional_Parthian", &unicode.Inscriptional_Parthian}, {"Javanese", &unicode.Javanese},
	{"Kaithi", &unicode.Kaithi}, {"Kannada", &unicode.Kannada}, {"Katakana", &unicode.Katakana},
	{"Kawi", &unicode.Kawi}, {"Kayah_Li", &unicode.Kayah_Li}, {"Kharoshthi", &unicode.Kharoshthi},
	{"Khitan_Small_Script", &unicode.Khitan_Small_Script}, {"Khmer", &unicode.Khmer},
	{"Khojki", &unicode.Khojki}, {"Khudawadi", &unicode.Khudawadi}, {"Lao", &unicode.Lao},
	{"Latin", &unicode.Latin}, {"Lepcha", &unicode.Lepcha}, {"Limbu", &unicode.Limbu},
	{"Linear_A", &unicode.Linear_A}, {"Linear_B", &unicode.Linear_B}, {"Lisu", &unicode.Lisu},
	{"Lycian", &unicode.Lycian}, {"Lydian", &unicode.Lydian}, {"Mahajani", &unicode.Mahajani},
	{"Makasar", &unicode.Makasar}, {"Malayalam", &unicode.Malayalam}, {"Mandaic", &unicode.Mandaic},
	{"Manichaean", &unicode.Manichaean}, {"Marchen", &unicode.Marchen},
	{"Masaram_Gondi", &unicode.Masaram_Gondi}, {"Medefaidrin", &unicode.Medefaidrin},
	{"Meetei_Mayek", &unicode.Meetei_Mayek}, {"Mende_Kikakui", &unicode.Mende_Kikakui},
	{"Meroitic_Cursive", &unicode.Meroitic_Cursive},
	{"Meroitic_Hieroglyphs", &unicode.Meroitic_Hieroglyphs}, {"Miao", &unicode.Miao},
	{"Modi", &unicode.Modi}, {"Mongolian", &unicode.Mongolian}, {"Mro", &unicode.Mro},
	{"Multani", &unicode.Multani}, {"Myanmar", &unicode.Myanmar}, {"Nabataean", &unicode.Nabataean},
	{"Nag_Mundari", &unicode.Nag_Mundari}, {"Nandinagari", &unicode.Nandinagari},
	{"New_Tai_Lue", &unicode.New_Tai_Lue}, {"Newa", &unicode.Newa}, {"Nko", &unicode.Nko},
	{"Nushu", &unicode.Nushu}, {"Nyiakeng_Puachue_Hmong", &unicode.Nyiakeng_Puachue_Hmong},
	{"Ogham", &unicode.Ogham}, {"Ol_Chiki", &unicode.Ol_Chiki},
	{"Old_Hungarian", &unicode.Old_Hungarian}, {"Old_Italic", &unicode.Old_Italic},
	{"Old_North_Arabian", &unicode.Old_North_Arabian}, {"Old_Permic", &unicode.Old_Permic},
	{"Old_Persian", &unicode.Old_Persian}, {"Old_Sogdian", &unicode.Old_Sogdian},
	{"Old_South_Arabian", &unicode.Old_South_Arabian}, {"Old_Turkic", &unicode.Old_Turkic},
	{"Old_Uyghur", &unicode.Old_Uyghur}, {"Oriya", &unicode.Oriya}, {"Osage", &unicode.Osage},
	{"Osmanya", &unicode.Osmanya}, {"Pahawh_Hmong", &unicode.Pahawh_Hmong},
	{"Palmyrene", &unicode.Palmyrene}, {"Pau_Cin_Hau", &unicode.Pau_Cin_Hau},
	{"Phags_Pa", &unicode.Phags_Pa}, {"Phoenician", &unicode.Phoenician},
	{"Psalter_Pahlavi", &unicode.Psalter_Pahlavi}, {"Rejang", &unicode.Rejang},
	{"Runic", &unicode.Runic}, {"Samaritan", &unicode.Samaritan}, {"Saurashtra", &unicode.Saurashtra},
	{"Sharada", &unicode.Sharada}, {"Shavian", &unicode.Shavian}, {"Siddham", &unicode.Siddham},
	{"SignWriting", &unicode.SignWriting}, {"Sinhala", &unicode.Sinhala}, {"Sogdian", &unicode.Sogdian},
	{"Sora_Sompeng", &unicode.Sora_Sompeng}, {"Soyombo", &unicode.Soyombo},
	{"Sundanese", &unicode.Sundanese}, {"Syloti_Nagri", &unicode.Syloti_Nagri},
	{"Syriac", &unicode.Syriac}, {"Tagalog", &unicode.Tagalog}, {"Tagbanwa", &unicode.Tagbanwa},
	{"Tai_Le", &unicode.Tai_Le}, {"Tai_Tham", &unicode.Tai_Tham}, {"Tai_Viet", &unicode.Tai_Viet},
	{"Takri", &unicode.Takri}, {"Tamil", &unicode.Tamil}, {"Tangsa", &unicode.Tangsa},
	{"Tangut", &unicode.Tangut}, {"Telugu", &unicode.Telugu}, {"Thaana", &unicode.Thaana},
	{"Thai", &unicode.Thai}, {"Tibetan", &unicode.Tibetan}, {"Tifinagh", &unicode.Tifinagh},
	{"Tirhuta", &unicode.Tirhuta}, {"Toto", &unicode.Toto}, {"Ugaritic", &unicode.Ugaritic},
	{"Vai", &unicode.Vai}, {"Vithkuqi", &unicode.Vithkuqi}, {"Wancho", &unicode.Wancho},
	{"Warang_Citi", &unicode.Warang_Citi}, {"Yezidi", &unicode.Yezidi}, {"Yi", &unicode.Yi},
	{"Zanabazar_Square", &unicode.Zanabazar_Square},
}

// lookalikes are the letters of Greek, Cyrillic and Latin that look like
// a basic Latin letter (or whose capital does), each followed by that
// letter, for [Fold]: a string rather than a map, which would be built by
// code at start-up. The letters are as Fold's case folding leaves them:
// lower case. Where the
// small and the capital letter look like different Latin letters (Greek
// η like n, Η like H), the small one, which people type more, decides.
const lookalikes = "аaвbеeіiјjкkмmнhоoрpсcтtуyхxѕsԁdһhӏlԛqԝwѵv" + // Cyrillic
	"αaβbεeζzηnιiκkμuνvοoρpτtυuχxϲcϳj" + // Greek
	"ɑaɡgȷj" // Latin

// Fold returns the key under which a valid name or room is unique. It
// folds case (Unicode simple case folding, so Σ, σ and ς are one letter,
// and İ and ı are i), makes a space and '_' the same ("first client" is
// "first_client"), turns full-width forms (Ａ, １) and every other
// decimal digit into ASCII, and maps the Greek, Cyrillic and Latin
// look-alikes of basic Latin letters to them (Cyrillic "ассе" is "acce").
// Fold(Fold(s)) == Fold(s), and Fold allocates nothing when s is its own
// key.
func Fold(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' || c == ' ' {
				return foldFrom(s, i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if size == 1 || foldRune(r) != r {
			return foldFrom(s, i)
		}
		i += size
	}
	return s
}

// foldFrom is Fold of s, where s[:i] is its own key.
func foldFrom(s string, i int) string {
	b := make([]byte, i, len(s)+utf8.UTFMax)
	copy(b, s)
	for _, r := range s[i:] {
		b = utf8.AppendRune(b, foldRune(r))
	}
	return string(b)
}

// foldRune is Fold of one character.
func foldRune(r rune) rune {
	switch {
	case r < utf8.RuneSelf:
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		if r == ' ' {
			return '_'
		}
		return r
	case r == 0x3000: // the full-width space
		return '_'
	case 0xff01 <= r && r <= 0xff5e: // full-width ASCII
		return foldRune(r - 0xff01 + '!')
	}
	if d, ok := digit(r); ok {
		return '0' + d
	}
	r = caseKey(r)
	if r < utf8.RuneSelf { // (K, the Kelvin sign, is k now): no look-alike
		return r
	}
	for i, c := range lookalikes {
		if c == r {
			return rune(lookalikes[i+utf8.RuneLen(c)])
		}
	}
	return r
}

// caseKey returns the one character that stands for r and all the
// characters that are r in another case: the least of their lower cases
// (of their upper cases, so ς and σ give σ). It is its own key.
func caseKey(r rune) rune {
	key := unicode.ToLower(unicode.ToUpper(r))
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		key = min(key, unicode.ToLower(unicode.ToUpper(f)))
	}
	return key
}

// digit returns the value of a decimal digit of any script. Unicode
// encodes each script's digits 0 to 9 in a row, and [unicode.Nd] holds
// them as ranges of whole rows.
func digit(r rune) (rune, bool) {
	if !unicode.IsDigit(r) {
		return 0, false
	}
	for _, rg := range unicode.Nd.R16 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return (r - rune(rg.Lo)) % 10, true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if rune(rg.Lo) <= r && r <= rune(rg.Hi) {
			return (r - rune(rg.Lo)) % 10, true
		}
	}
	return 0, false
}
