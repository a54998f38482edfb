package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/pflag"
)

// setting is one configuration value of a command. It can be set, from the
// highest precedence down, by a flag, a SLUICE_* environment variable, a key
// in the YAML configuration file, or left at its default. The names derive
// from the key: data_dir is --data-dir, SLUICE_DATA_DIR and data_dir:.
type setting struct {
	key   string
	def   string
	usage string
	dst   *string
	// boolean lets the flag be given without a value, meaning true
	// (--auto-create-topics), besides --flag=false.
	boolean bool
	// from records what set the value, for error messages.
	from string
}

func (s *setting) flag() string { return strings.ReplaceAll(s.key, "_", "-") }
func (s *setting) env() string  { return "SLUICE_" + strings.ToUpper(s.key) }

// Names of the setting that selects the configuration file.
const (
	configFlag = "config"
	configEnv  = "SLUICE_CONFIG"
)

// settings are a command's configuration values.
type settings []*setting

// addFlags defines a flag for each setting, and --config.
func (ss settings) addFlags(fs *pflag.FlagSet) {
	for _, s := range ss {
		fs.String(s.flag(), s.def, s.usage+" ["+s.env()+"]")
		if s.boolean {
			fs.Lookup(s.flag()).NoOptDefVal = "true"
		}
	}
	fs.String(configFlag, "", "YAML configuration file; keys are the flag names with _ for - (data_dir: ...) ["+configEnv+"]")
}

// resolve sets every setting's destination from, in order of precedence,
// the flags the user set, the environment, the configuration file and the
// defaults. lookupEnv is os.LookupEnv outside tests; an empty variable
// counts as unset.
func (ss settings) resolve(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) error {
	env := func(name string) (string, bool) {
		v, ok := lookupEnv(name)
		return v, ok && v != ""
	}
	for _, s := range ss {
		*s.dst, s.from = s.def, "default"
	}

	path, _ := fs.GetString(configFlag)
	if !fs.Changed(configFlag) {
		path, _ = env(configEnv)
	}
	if path != "" {
		values, err := readConfigFile(path, ss)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if v, ok := values[s.key]; ok {
				*s.dst, s.from = v, "config file "+path
			}
		}
	}

	for _, s := range ss {
		if v, ok := env(s.env()); ok {
			*s.dst, s.from = v, s.env()
		}
		if fs.Changed(s.flag()) {
			*s.dst, _ = fs.GetString(s.flag())
			s.from = "--" + s.flag()
		}
	}
	return nil
}

// explicit reports whether the setting whose destination is dst was set by
// a flag, the environment or the configuration file, rather than left at
// its default.
func (ss settings) explicit(dst *string) bool {
	for _, s := range ss {
		if s.dst == dst {
			return s.from != "default"
		}
	}
	return false
}

// describe names the setting whose destination is dst as what set it:
// --flag, SLUICE_ENV, or key (config file PATH).
func (ss settings) describe(dst *string) string {
	for _, s := range ss {
		if s.dst == dst {
			if strings.HasPrefix(s.from, "--") || strings.HasPrefix(s.from, "SLUICE_") {
				return s.from
			}
			return s.key + " (" + s.from + ")"
		}
	}
	return "unknown"
}

// source returns what set the setting whose destination is dst.
func (ss settings) source(dst *string) string {
	for _, s := range ss {
		if s.dst == dst {
			return s.from
		}
	}
	return "unknown"
}

// readConfigFile reads a YAML mapping of setting keys to scalar values.
func readConfigFile(path string, ss settings) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		var yerr yaml.Error
		if errors.As(err, &yerr) {
			err = errors.New(yerr.FormatError(false, false))
		}
		return nil, fmt.Errorf("config file %s: want a mapping of settings: %w", path, err)
	}
	var known []string
	for _, s := range ss {
		known = append(known, s.key)
	}
	slices.Sort(known)
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	values := map[string]string{}
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("config file %s: unknown key %q (known keys: %s)", path, k, strings.Join(known, ", "))
		}
		switch v := doc[k].(type) {
		case string:
			values[k] = v
		case bool, int, int64, uint64, float64:
			values[k] = fmt.Sprint(v)
		case nil:
			return nil, fmt.Errorf("config file %s: key %q has no value", path, k)
		default:
			return nil, fmt.Errorf("config file %s: key %q: want a single value, not a list or mapping", path, k)
		}
	}
	return values, nil
}
