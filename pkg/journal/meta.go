package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Small files beside the journal, each written whole (writeAtomic).
const (
	// nameFile holds the name of the node the directory belongs to.
	nameFile = "NAME"
	// healingFile exists while a node that lost records has not yet got
	// them back from every neighbour; it holds what was lost.
	healingFile = "HEALING"
)

// writeAtomic replaces dir/name with b, so that a crash leaves either the
// old file or the new one: a temporary file, fsync, rename, fsync of the
// directory.
func writeAtomic(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// readSmall reads one of the small files; a missing file is "".
func readSmall(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", filepath.Join(dir, name), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkName makes sure dir belongs to the node called name, and records
// the name if the directory has none yet. An empty name (a tool, or a
// test) checks nothing.
func checkName(dir, name string) error {
	if name == "" {
		return nil
	}
	have, err := readSmall(dir, nameFile)
	if err != nil {
		return err
	}
	switch {
	case have == name:
		return nil
	case have != "":
		return fmt.Errorf("data directory %s belongs to the node %q, not to %q (HERD_NAME); "+
			"give each node its own directory", dir, have, name)
	}
	return writeAtomic(dir, nameFile, []byte(name+"\n"))
}

// removeLeftovers removes the temporary files of an interrupted snapshot
// or small-file write (*.tmp). The caller holds the lock, so no writer
// of them is running.
func removeLeftovers(dir string, log func(msg string, args ...any)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".tmp") || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("removing the leftover %s: %w", filepath.Join(dir, e.Name()), err)
		}
		log("journal: removed the leftover of an interrupted write", "file", e.Name())
	}
	return nil
}
