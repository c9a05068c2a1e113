package test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerfileStages checks the Dockerfile's two ways to one image: the
// "source" stage (built from source where a registry provides golang) and
// the "prebuilt" stage (docker/build-image and the end-to-end tests, no
// registry) differ only in where their files come from, and "prebuilt" is
// the last stage and needs no other, since docker/build-image gives Docker
// only the lines from it on.
func TestDockerfileStages(t *testing.T) {
	b, err := os.ReadFile(root + "/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string][]string{} // name: instructions, COPY lines apart
	copies := map[string][]string{}
	var order []string
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := regexp.MustCompile(`^FROM \S+ AS (\S+)$`).FindStringSubmatch(line); m != nil {
			cur = m[1]
			order = append(order, cur)
			continue
		}
		if strings.HasPrefix(line, "COPY ") {
			copies[cur] = append(copies[cur], line)
			continue
		}
		stages[cur] = append(stages[cur], line)
	}
	if len(order) == 0 || order[len(order)-1] != "prebuilt" {
		t.Fatalf("stages %q: want prebuilt last", order)
	}
	if !slices.Contains(order, "source") {
		t.Fatalf("stages %q: no source stage", order)
	}
	if !slices.Equal(stages["source"], stages["prebuilt"]) {
		t.Errorf("the source and prebuilt stages differ beyond their COPY lines:\nsource:   %q\nprebuilt: %q", stages["source"], stages["prebuilt"])
	}
	for _, c := range copies["prebuilt"] {
		if strings.Contains(c, "--from") {
			t.Errorf("prebuilt copies from another stage: %s", c)
		}
	}
	for _, label := range []string{"source", "version", "revision", "licenses"} {
		if !strings.Contains(strings.Join(stages["prebuilt"], "\n"), "org.opencontainers.image."+label+"=") {
			t.Errorf("the image has no org.opencontainers.image.%s label", label)
		}
	}
	script, err := os.ReadFile(root + "/docker/build-image")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "'/^FROM scratch AS prebuilt$/,$p'") || !strings.Contains(string(b), "\nFROM scratch AS prebuilt\n") {
		t.Error("docker/build-image does not cut the Dockerfile at its line FROM scratch AS prebuilt")
	}
	for _, flag := range []string{".Revision=$revision", "REVISION=$revision"} {
		if !strings.Contains(string(script), flag) {
			t.Errorf("docker/build-image does not stamp the revision (%s)", flag)
		}
	}
}
