package places

// ParseReference is parseReference, for the tests of package places_test.
var ParseReference = parseReference
