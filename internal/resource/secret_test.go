package resource

import (
	"strings"
	"testing"
)

func TestRedactDSNForms(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:pa/ss@db/app", "postgres://u:****@db/app"},
		{"postgres://u:p@ss@db/app", "postgres://u:****@db/app"},
		{"postgres://u:pass${X}@db/app", "postgres://u:****@db/app"},
		{"postgres://u:${P:-hunter2}@db/app", "postgres://u:****@db/app"},
		{"postgres://u:${A}${B}@db/app", "postgres://u:${A}${B}@db/app"},
		{"postgres://u@db/app", "postgres://u@db/app"},
		{"postgres://db1:5432,db2:5432/app?target_session_attrs=read-write", "postgres://db1:5432,db2:5432/app?target_session_attrs=read-write"},
		{"postgresql://db/app?user=u&sslpassword=k3y&password=hunter2", "postgresql://db/app?user=u&sslpassword=****&password=****"},
		{"postgresql://db/app?password=${PW}", "postgresql://db/app?password=${PW}"},
		{"host=db password = hunter2", "host=db password = ****"},
		{"user=u password=${PW}x", "user=u password=****"},
		{"user=u password=${PW}", "user=u password=${PW}"},
		{`host=db password='it\'s secret' sslmode=require`, "host=db password=**** sslmode=require"},
		{"host=db sslpassword=k3y", "host=db sslpassword=****"},
		{"host=db password='unterminated", "****"},
		{"not a dsn hunter2", "****"},
		{"", ""},
	} {
		if got := RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func pgPipeline(t *testing.T, dsn string) []Resource {
	t.Helper()
	rs, err := Parse("p.yaml", []byte("apiVersion: sluice.dev/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  source: {topic: t}\n  sink:\n    postgres: {dsn: '"+dsn+"', table: x}\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestDiffShowsNoSecret: a diff goes to clients and terminals; a literal
// password in a DSN never appears in it, yet a changed one is an update.
func TestDiffShowsNoSecret(t *testing.T) {
	a := pgPipeline(t, "postgres://u:hunter2@db/app")
	b := pgPipeline(t, "postgres://u:hunter3@db/app")
	for _, tc := range []struct {
		name          string
		current, want []Resource
		action        string
	}{
		{"changed password", a, b, ActionUpdate},
		{"created", nil, b, ActionCreate},
		{"deleted", a, nil, ActionDelete},
		{"unchanged", a, a, ActionUnchanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := Diff(tc.current, tc.want, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(ch) != 1 || ch[0].Action != tc.action {
				t.Fatalf("got %+v, want one %s", ch, tc.action)
			}
			for _, s := range []string{ch[0].Text, string(ch[0].Before), string(ch[0].After)} {
				if strings.Contains(s, "hunter") {
					t.Fatalf("the change shows the password: %q", s)
				}
			}
			if tc.action == ActionUpdate && !strings.Contains(ch[0].Text, "secret value changed") {
				t.Fatalf("got text %q, want it to say a secret changed", ch[0].Text)
			}
		})
	}
}

// TestExpandReportsEveryVariable: every unset variable is named, in the
// order of the fields, never with a value; names and labels are not
// expanded.
func TestExpandReportsEveryVariable(t *testing.T) {
	p := &Pipeline{Metadata: Metadata{Name: "${NAME}"}, Spec: PipelineSpec{
		Source: Source{Topic: "${B}", Group: "${SET}${C}${D:-x}"},
		Sink:   Sink{Stdout: &StdoutSink{Format: "${A}"}},
	}}
	set := map[string]string{"SET": "hunter2"}
	_, err := Expand(p, func(k string) (string, bool) { v, ok := set[k]; return v, ok })
	want := "pipeline ${NAME}: spec.sink.stdout.format: ${A} is not set in the server's environment\n" +
		"spec.source.group: ${C} is not set in the server's environment\n" +
		"spec.source.topic: ${B} is not set in the server's environment"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	set["A"], set["B"], set["C"] = "value", "orders", "c"
	got, err := Expand(p, func(k string) (string, bool) { v, ok := set[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Name != "${NAME}" || got.Spec.Source.Group != "hunter2cx" || got.Spec.Source.Topic != "orders" || p.Spec.Source.Topic != "${B}" {
		t.Fatalf("got %+v from %+v", got, p)
	}
}
