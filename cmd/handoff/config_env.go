package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envPrefix starts every environment override: HANDOFF_<SECTION>_<KEY>.
const envPrefix = "HANDOFF_"

// envVar is one leaf key of the configuration and its environment variable.
type envVar struct {
	Key   string // dotted YAML key, e.g. "numbers.ttl"
	Env   string // e.g. "HANDOFF_NUMBERS_TTL"
	field reflect.Value
}

var durationType = reflect.TypeFor[time.Duration]()

// walkConfig calls visit for every field of cfg, a section before its
// keys, with the field's path of YAML names. Lists of records
// (auth.credentials, sip.digest.users) are leaves.
func walkConfig(cfg *Config, visit func(path []string, f reflect.Value, leaf bool)) {
	var walk func(v reflect.Value, path []string)
	walk = func(v reflect.Value, path []string) {
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			p := append(slices.Clone(path), name)
			f := v.Field(i)
			section := f.Kind() == reflect.Struct && f.Type() != durationType
			visit(p, f, !section)
			if section {
				walk(f, p)
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), nil)
}

// configKeys lists every leaf key of cfg in declaration order.
func configKeys(cfg *Config) []envVar {
	var out []envVar
	walkConfig(cfg, func(path []string, f reflect.Value, leaf bool) {
		if leaf {
			out = append(out, envVar{
				Key:   strings.Join(path, "."),
				Env:   envPrefix + strings.ToUpper(strings.Join(path, "_")),
				field: f,
			})
		}
	})
	return out
}

// keyNames maps the address of every field of one Config, sections
// included, to its dotted key: &c.SIP.Return.Fallback to
// "sip.return.fallback", &c.SIP.Flood to "sip.flood".
type keyNames map[any]string

func keyNamesOf(cfg *Config) keyNames {
	k := keyNames{}
	walkConfig(cfg, func(path []string, f reflect.Value, _ bool) {
		k[f.Addr().Interface()] = strings.Join(path, ".")
	})
	return k
}

// of is the key of field, a pointer into the Config the names were taken from.
func (k keyNames) of(field any) string {
	name, ok := k[field]
	if !ok {
		panic(fmt.Sprintf("config: %T %p is not a field of this Config", field, field))
	}
	return name
}

// applyEnv overrides keys from the environment. Formats: durations as Go
// durations ("90s"), lists comma-separated, auth.credentials as
// "id:secret,id2:secret2", sip.digest.users as "user:password,...", and
// numbers.pools as "US=+1...-+1...,+1...;GB=+44...".
// (koanf's env provider was tried in its place: it still needs our key
// table and a decode hook per list format, and loses the variable's name
// and the plain wording in its errors.)
func applyEnv(cfg *Config, lookupEnv func(string) (string, bool)) error {
	var errs []error
	for _, k := range configKeys(cfg) {
		raw, ok := lookupEnv(k.Env)
		raw = strings.TrimSpace(raw)
		if !ok || raw == "" {
			continue
		}
		if err := setFromEnv(k.field, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", k.Env, k.Key, err))
		}
	}
	return errors.Join(errs...)
}

// setFromEnv sets one leaf from its environment variable.
func setFromEnv(f reflect.Value, raw string) error {
	var err error
	switch {
	case f.Type() == durationType:
		var d time.Duration
		if d, err = time.ParseDuration(raw); err != nil {
			return fmt.Errorf("%q is not a duration (use e.g. 90s, 10m)", raw)
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String: // strings and the typed enums
		f.SetString(raw)
	case f.CanInt():
		var n int64
		if n, err = strconv.ParseInt(raw, 10, f.Type().Bits()); err != nil {
			return fmt.Errorf("%q is not an integer", raw)
		}
		f.SetInt(n)
	case f.Kind() == reflect.Bool:
		var b bool
		if b, err = strconv.ParseBool(raw); err != nil {
			return fmt.Errorf("%q is not a boolean (use true or false)", raw)
		}
		f.SetBool(b)
	case f.CanFloat():
		var n float64
		if n, err = strconv.ParseFloat(raw, 64); err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		f.SetFloat(n)
	default:
		return setListFromEnv(f, raw)
	}
	return nil
}

// setListFromEnv sets a list or map leaf.
func setListFromEnv(f reflect.Value, raw string) error {
	var err error
	switch p := f.Addr().Interface().(type) {
	case *[]string:
		*p = splitList(raw, ",")
	case *[]Credential:
		*p, err = splitPairs(raw, "id:secret", func(id, secret string) Credential { return Credential{ID: id, Secret: secret} })
	case *[]DigestUser:
		*p, err = splitPairs(raw, "username:password", func(u, pw string) DigestUser { return DigestUser{Username: u, Password: pw} })
	case *map[string][]string:
		*p, err = splitPools(raw)
	default:
		return fmt.Errorf("no environment format for %s", f.Type())
	}
	return err
}

func splitList(s, sep string) []string {
	var out []string
	for _, part := range strings.Split(s, sep) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// splitPairs reads comma-separated a:b pairs (split at the first colon).
func splitPairs[T any](raw, want string, record func(a, b string) T) ([]T, error) {
	var out []T
	for _, item := range splitList(raw, ",") {
		a, b, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("want comma-separated %s pairs", want)
		}
		out = append(out, record(a, b))
	}
	return out, nil
}

// splitPools reads "US=+1...-+1...,+1...;GB=+44...".
func splitPools(raw string) (map[string][]string, error) {
	pools := map[string][]string{}
	for _, item := range splitList(raw, ";") {
		cc, entries, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want COUNTRY=ENTRY[,ENTRY] (numbers or +A-+B ranges)", item)
		}
		cc = strings.TrimSpace(cc)
		pools[cc] = append(pools[cc], splitList(entries, ",")...)
	}
	return pools, nil
}
