package ociarchive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"testing"
)

// readArchive returns the files of a tar by name.
func readArchive(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
}

// TestWrite follows the layout from index.json to the binary, checking
// every digest and size on the way, as an importer does.
func TestWrite(t *testing.T) {
	exe := []byte("\x7fELF not really")
	var b bytes.Buffer
	if err := Write(&b, "herd.local/pause:1", "pause", exe); err != nil {
		t.Fatal(err)
	}
	files := readArchive(t, b.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %s", files["oci-layout"])
	}
	blob := func(d Descriptor, mediaType string) []byte {
		t.Helper()
		data, ok := files["blobs/sha256/"+d.Digest[len("sha256:"):]]
		if !ok || d.MediaType != mediaType || d.Size != len(data) || digest(data) != d.Digest {
			t.Fatalf("blob %+v (%s): present %v, %d bytes", d, mediaType, ok, len(data))
		}
		return data
	}
	var index struct{ Manifests []Descriptor }
	if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %s, %v", files["index.json"], err)
	}
	if n := index.Manifests[0].Annotations["io.containerd.image.name"]; n != "herd.local/pause:1" {
		t.Errorf("image name %q", n)
	}
	var manifest struct {
		Config Descriptor
		Layers []Descriptor
	}
	if err := json.Unmarshal(blob(index.Manifests[0], MediaManifest), &manifest); err != nil || len(manifest.Layers) != 1 {
		t.Fatalf("manifest: %+v, %v", manifest, err)
	}
	var config struct {
		Config struct{ Entrypoint []string }
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(blob(manifest.Config, MediaConfig), &config); err != nil {
		t.Fatal(err)
	}
	layer := blob(manifest.Layers[0], MediaLayer)
	if len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != "/pause" ||
		len(config.RootFS.DiffIDs) != 1 || config.RootFS.DiffIDs[0] != digest(layer) {
		t.Errorf("config: %+v", config)
	}
	lf := readArchive(t, layer)
	if len(lf) != 1 || !bytes.Equal(lf["pause"], exe) {
		t.Errorf("layer: %v", lf)
	}
}
