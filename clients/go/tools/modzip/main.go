// modzip publishes a Go module's directory as a module proxy would serve it
// (https://go.dev/ref/mod#goproxy-protocol), so that `go get` installs it from GOPROXY=file://…:
//
//	go run ./modzip <module dir> <module path> <version> <proxy dir>
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: modzip <module dir> <module path> <version> <proxy dir>")
		os.Exit(2)
	}
	if err := publish(os.Args[1], module.Version{Path: os.Args[2], Version: os.Args[3]}, os.Args[4]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func publish(dir string, version module.Version, proxy string) error {
	escaped, err := module.EscapePath(version.Path)
	if err != nil {
		return err
	}
	versions := filepath.Join(proxy, escaped, "@v")
	if err := os.MkdirAll(versions, 0o755); err != nil {
		return err
	}
	archive, err := os.Create(filepath.Join(versions, version.Version+".zip"))
	if err != nil {
		return err
	}
	defer archive.Close()
	if err := zip.CreateFromDir(archive, version, dir); err != nil {
		return err
	}
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	info, err := json.Marshal(map[string]any{"Version": version.Version, "Time": time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	for name, content := range map[string][]byte{version.Version + ".mod": goMod, version.Version + ".info": info, "list": []byte(version.Version + "\n")} {
		if err := os.WriteFile(filepath.Join(versions, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}
