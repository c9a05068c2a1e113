package offline

import (
	"cmp"
	"math"
	"slices"
	"sort"
)

// The spatial index cuts the globe into latitude bands of bandUnits and
// keeps each band's places sorted by longitude, all in one slice. A query
// visits only the bands its cap overlaps and, in each, binary-searches the
// longitude span of the cap: a bounding box without a grid of empty cells
// (1,801 offsets instead of a cell table), and tight enough that a 50 km
// query around Paris computes 684 distances to find its 635 places, of
// 135,233.
const (
	bandUnits = coordScale / 10 // 0.1 degree, about 11 km
	numBands  = 180 * coordScale / bandUnits
)

// earthRadiusKm is the mean Earth radius (IUGG).
const earthRadiusKm = 6371.0088

const degree = math.Pi / 180

// bandOf returns the band holding latitude lat (coordScale units); the
// north pole belongs to the last band.
func bandOf(lat int32) int {
	return min(int((lat+90*coordScale)/bandUnits), numBands-1)
}

// index sorts the places into bands and records where each band starts.
func (t *table) index() {
	slices.SortFunc(t.places, func(a, b place) int {
		if c := cmp.Compare(bandOf(a.lat), bandOf(b.lat)); c != 0 {
			return c
		}
		return cmp.Compare(a.lng, b.lng)
	})
	t.bands = make([]uint32, numBands+1)
	for i := range t.places {
		t.bands[bandOf(t.places[i].lat)+1]++
	}
	for i := 1; i <= numBands; i++ {
		t.bands[i] += t.bands[i-1]
	}
}

// haversine returns the haversine of the central angle between two
// points in degrees, given the cosine of the first latitude (which a
// search computes once).
func haversine(lat1, cosLat1, lng1, lat2, lng2 float64) float64 {
	s1 := math.Sin((lat2 - lat1) * degree / 2)
	s2 := math.Sin((lng2 - lng1) * degree / 2)
	return s1*s1 + cosLat1*math.Cos(lat2*degree)*s2*s2
}

// havKm turns a haversine into a great-circle distance in km.
func havKm(h float64) float64 {
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(h, 1)))
}

// distanceKm returns the great-circle distance between two points in
// degrees, exactly as a search computes it.
func distanceKm(lat1, lng1, lat2, lng2 float64) float64 {
	return havKm(haversine(lat1, math.Cos(lat1*degree), lng1, lat2, lng2))
}

// lngRange is an inclusive longitude span in coordScale units.
type lngRange struct{ lo, hi int32 }

// search calls visit for every place within km of (lat, lng), in degrees,
// with its distance in km.
func (t *table) search(lat, lng, km float64, visit func(p *place, km float64)) {
	if len(t.places) == 0 || !(km >= 0) || !(lat >= -90 && lat <= 90) || !(lng >= -180 && lng <= 180) {
		return
	}
	// Half way round the globe covers all of it.
	km = min(km, math.Pi*earthRadiusKm)
	delta := km / earthRadiusKm // the cap's angular radius in radians
	deltaDeg := delta / degree
	// One unit of slack on each side of the box: the box only narrows the
	// rows whose distance is computed, the distance decides.
	latLo := max(int32(math.Floor((lat-deltaDeg)*coordScale))-1, -90*coordScale)
	latHi := min(int32(math.Ceil((lat+deltaDeg)*coordScale))+1, 90*coordScale)

	var spans [2]lngRange
	ranges := spans[:1]
	spans[0] = lngRange{-180 * coordScale, 180 * coordScale}
	// The cap spans every longitude when it holds a pole; otherwise its
	// widest point, at the tangents of two meridians, is asin(sin δ / cos φ)
	// either side.
	if s := math.Sin(delta) / math.Cos(lat*degree); lat+deltaDeg < 90 && lat-deltaDeg > -90 && s < 1 {
		dl := math.Asin(s) / degree
		lo := int64(math.Floor((lng-dl)*coordScale)) - 1
		hi := int64(math.Ceil((lng+dl)*coordScale)) + 1
		const full = 360 * coordScale
		switch {
		case hi-lo >= full:
		case lo < -180*coordScale: // across the antimeridian, westwards
			spans[0] = lngRange{int32(lo + full), 180 * coordScale}
			spans[1] = lngRange{-180 * coordScale, int32(hi)}
			ranges = spans[:2]
		case hi > 180*coordScale: // across the antimeridian, eastwards
			spans[0] = lngRange{int32(lo), 180 * coordScale}
			spans[1] = lngRange{-180 * coordScale, int32(hi - full)}
			ranges = spans[:2]
		default:
			spans[0] = lngRange{int32(lo), int32(hi)}
		}
	}

	// The exact test is d <= km; the haversine bound only skips the
	// inverse sine for rows clearly outside, with room for rounding.
	hmax := math.Sin(delta/2)*math.Sin(delta/2)*(1+1e-9) + 1e-18
	cosLat := math.Cos(lat * degree)
	for b := bandOf(latLo); b <= bandOf(latHi); b++ {
		band := t.places[t.bands[b]:t.bands[b+1]]
		for _, r := range ranges {
			i := sort.Search(len(band), func(i int) bool { return band[i].lng >= r.lo })
			for ; i < len(band) && band[i].lng <= r.hi; i++ {
				p := &band[i]
				if p.lat < latLo || p.lat > latHi {
					continue
				}
				h := haversine(lat, cosLat, lng, float64(p.lat)/coordScale, float64(p.lng)/coordScale)
				if h > hmax {
					continue
				}
				if d := havKm(h); d <= km {
					visit(p, d)
				}
			}
		}
	}
}
