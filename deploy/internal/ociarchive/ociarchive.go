// Package ociarchive writes an OCI image archive (an image layout in a
// tar, as `ctr images import` reads it) of an image that is one static
// binary FROM scratch: the pause image of deploy's kubelet test, made
// with no registry and no image builder.
package ociarchive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
)

// Media types of the image layout (opencontainers/image-spec).
const (
	MediaIndex    = "application/vnd.oci.image.index.v1+json"
	MediaManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaConfig   = "application/vnd.oci.image.config.v1+json"
	MediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// Descriptor points at a blob of the layout.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// digest is a blob's content address.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func describe(mediaType string, b []byte) Descriptor {
	return Descriptor{MediaType: mediaType, Digest: digest(b), Size: len(b)}
}

// layer is a tar of one file, path, mode 0755, holding exe.
func layer(path string, exe []byte) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o755, Size: int64(len(exe)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(exe); err != nil {
		return nil, err
	}
	return b.Bytes(), tw.Close()
}

// Write writes to w the archive of image name (a full reference, such as
// herd.local/pause:1, which ctr gives the image it imports) whose only
// file is exe at /path and whose entrypoint it is.
func Write(w io.Writer, name, path string, exe []byte) error {
	l, err := layer(path, exe)
	if err != nil {
		return err
	}
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/" + path}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(l)}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": MediaManifest,
		"config": describe(MediaConfig, config),
		"layers": []Descriptor{describe(MediaLayer, l)},
	})
	if err != nil {
		return err
	}
	m := describe(MediaManifest, manifest)
	m.Annotations = map[string]string{"io.containerd.image.name": name}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaIndex, "manifests": []Descriptor{m}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(l), l}, {blobPath(config), config}, {blobPath(manifest), manifest},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return tw.Close()
}

// blobPath is where the layout keeps blob b.
func blobPath(b []byte) string {
	return "blobs/sha256/" + digest(b)[len("sha256:"):]
}
