package transfer

import (
	"reflect"
	"testing"
)

// Only numbers whose place changes reach the Redis pool scripts.
func TestPoolChanges(t *testing.T) {
	places := map[string]numberPlace{
		"+1": {country: "US"},                // in place: nothing to do
		"+2": {country: "US", retired: true}, // configured again: un-retire
		"+3": {country: "CA"},                // moves to US: check, then add
		"+4": {country: "US"},                // no longer configured: remove
	}
	got := poolChanges(map[string][]string{"US": {"+1", "+2", "+3", "+5"}}, places)
	want := numberChanges{
		check:  map[string][]string{"US": {"+3"}},
		remove: map[string][]string{"CA": {"+3"}, "US": {"+4"}},
		add:    map[string][]string{"US": {"+2", "+3", "+5"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("poolChanges = %+v, want %+v", got, want)
	}
}
