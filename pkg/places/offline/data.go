package offline

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed" // the GeoNames tables
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The GeoNames tables, gzip-compressed TSV with a header row; see
// geonames/README.md for their columns and license.
var (
	//go:embed geonames/geonames-cities1000.tsv.gz
	citiesGz []byte
	//go:embed geonames/geonames-admin1.tsv.gz
	admin1Gz []byte
)

// Attribution is the credit the GeoNames license asks for, as plain text.
const Attribution = "Place data from GeoNames (https://www.geonames.org), licensed under CC BY 4.0."

// attributionHTML is Attribution as Google's html_attributions carry it.
const attributionHTML = `Place data from <a href="https://www.geonames.org/">GeoNames</a>, licensed under <a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>.`

// coordScale is the number of coordinate units in a degree. The tables
// give at most five decimals, so an int32 holds every coordinate exactly
// (±180e5 fits easily) and renders back to the same text.
const coordScale = 1e5

// place is one row of the cities table, packed: 28 bytes a row, the name
// living in table.names and the vicinity interned in table.vicinities.
type place struct {
	lat, lng int32 // coordScale units
	id       uint32
	pop      uint32
	nameOff  uint32
	nameLen  uint16
	vicinity uint16 // index into table.vicinities
	code     uint8  // index into table.codes
}

// table is the loaded data and its spatial index: the places sorted by
// latitude band, then by longitude, with band i's places at
// places[bands[i]:bands[i+1]].
type table struct {
	places     []place
	bands      []uint32
	names      string
	vicinities []string
	codes      []string
}

func (t *table) name(p *place) string {
	return t.names[p.nameOff : p.nameOff+uint32(p.nameLen)]
}

// loadEmbedded reads the embedded tables.
func loadEmbedded() (*table, error) {
	cities, err := gzip.NewReader(bytes.NewReader(citiesGz))
	if err != nil {
		return nil, fmt.Errorf("places: cities table: %w", err)
	}
	admin1, err := gzip.NewReader(bytes.NewReader(admin1Gz))
	if err != nil {
		return nil, fmt.Errorf("places: admin1 table: %w", err)
	}
	return loadTable(cities, admin1)
}

// loadTable reads a cities and an admin1 table, in the embedded files'
// format, and indexes them.
func loadTable(cities, admin1 io.Reader) (*table, error) {
	admin, err := readAdmin1(admin1)
	if err != nil {
		return nil, err
	}
	t := &table{}
	vicinityIndex := map[string]uint16{}
	codeIndex := map[string]uint8{}
	var names strings.Builder
	err = readTSV(cities, 8, func(line int, f []string) error {
		id, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return fmt.Errorf("geonameid %q: %w", f[0], err)
		}
		pop, err := strconv.ParseUint(f[5], 10, 32)
		if err != nil {
			return fmt.Errorf("population %q: %w", f[5], err)
		}
		lat, err := parseCoord(f[6], 90)
		if err != nil {
			return fmt.Errorf("lat: %w", err)
		}
		lng, err := parseCoord(f[7], 180)
		if err != nil {
			return fmt.Errorf("lng: %w", err)
		}
		if len(f[1]) > math.MaxUint16 {
			return errors.New("name too long")
		}
		vic := strings.Clone(f[2])
		if a, ok := admin[f[2]+"."+f[3]]; ok && f[3] != "" {
			vic = a + ", " + f[2]
		}
		v, ok := vicinityIndex[vic]
		if !ok {
			if len(t.vicinities) > math.MaxUint16 {
				return errors.New("too many distinct vicinities")
			}
			v = uint16(len(t.vicinities))
			vicinityIndex[vic] = v
			t.vicinities = append(t.vicinities, vic)
		}
		c, ok := codeIndex[f[4]]
		if !ok {
			if len(t.codes) > math.MaxUint8 {
				return errors.New("too many distinct feature codes")
			}
			c = uint8(len(t.codes))
			codeIndex[f[4]] = c
			t.codes = append(t.codes, f[4])
		}
		t.places = append(t.places, place{
			lat: lat, lng: lng, id: uint32(id), pop: uint32(pop),
			nameOff: uint32(names.Len()), nameLen: uint16(len(f[1])),
			vicinity: v, code: c,
		})
		names.WriteString(f[1])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("places: cities table: %w", err)
	}
	// Exact copies, so that the slack of growing them is not kept.
	t.names = strings.Clone(names.String())
	t.places = slices.Clone(t.places)
	t.index()
	return t, nil
}

// readAdmin1 reads the admin1 table into a map from "CC.code" to name.
func readAdmin1(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	err := readTSV(r, 2, func(_ int, f []string) error {
		m[f[0]] = f[1]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("places: admin1 table: %w", err)
	}
	return m, nil
}

// readTSV calls row with the fields of every line after the header, which
// must have exactly n fields. The fields are substrings of the line.
func readTSV(r io.Reader, n int, row func(line int, fields []string) error) error {
	sc := bufio.NewScanner(r)
	fields := make([]string, n)
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue // header
		}
		s := sc.Text()
		for i := range n - 1 {
			var ok bool
			fields[i], s, ok = strings.Cut(s, "\t")
			if !ok {
				return fmt.Errorf("line %d: %d fields, want %d", line, i+1, n)
			}
		}
		if strings.Contains(s, "\t") {
			return fmt.Errorf("line %d: more than %d fields", line, n)
		}
		fields[n-1] = s
		if err := row(line, fields); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if line < 1 {
		return errors.New("no header")
	}
	return nil
}

// parseCoord reads decimal degrees within ±limit into coordScale units.
func parseCoord(s string, limit float64) (int32, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > limit {
		return 0, fmt.Errorf("%q is not within ±%g degrees", s, limit)
	}
	return int32(math.Round(f * coordScale)), nil
}

// appendCoord appends v, in coordScale units, as decimal degrees with no
// trailing zeros: the text it was read from, up to trailing zeros.
func appendCoord(dst []byte, v int32) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	dst = strconv.AppendInt(dst, int64(v/coordScale), 10)
	frac := v % coordScale
	if frac == 0 {
		return dst
	}
	var digits [5]byte
	for i := 4; i >= 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	d := bytes.TrimRight(digits[:], "0")
	dst = append(dst, '.')
	return append(dst, d...)
}
