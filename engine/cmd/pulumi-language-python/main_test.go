package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// A stand-in executor: a Python script that says it started, then reacts to
// SIGINT as `mode` says ("leave": exit 32 at once, "ignore": keep sleeping).
const executor = `import os, signal, sys, time
mark = os.environ["MARK"]
def leave(*_):
    open(mark, "a").write("interrupted\n")
    sys.exit(32)
if os.environ["MODE"] == "ignore":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
else:
    signal.signal(signal.SIGINT, leave)
open(mark, "a").write("started\n")
time.sleep(60)
open(mark, "a").write("finished\n")
`

func runUntilCancelled(t *testing.T, mode string) (*pulumirpc.RunResponse, string) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "executor.py")
	if err := os.WriteFile(script, []byte(executor), 0o600); err != nil {
		t.Fatal(err)
	}
	mark := filepath.Join(dir, "mark")
	t.Setenv("MARK", mark)
	t.Setenv("MODE", mode)
	h := &host{executor: script}
	h.cancelled, h.cancel = context.WithCancel(context.Background())
	done := make(chan *pulumirpc.RunResponse, 1)
	go func() {
		response, err := h.Run(context.Background(), &pulumirpc.RunRequest{
			Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."},
		})
		if err != nil {
			t.Error(err)
		}
		done <- response
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if text, _ := os.ReadFile(mark); strings.Contains(string(text), "started") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the program never started")
		}
	}
	if _, err := h.Cancel(context.Background(), &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	select {
	case response := <-done:
		text, _ := os.ReadFile(mark)
		return response, string(text)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after Cancel")
	}
	return nil, ""
}

func TestCancelInterruptsTheProgram(t *testing.T) {
	response, mark := runUntilCancelled(t, "leave")
	if mark != "started\ninterrupted\n" {
		t.Fatalf("the program saw %q", mark)
	}
	if !response.Bail {
		t.Fatalf("exit 32 is a message already shown, not %+v", response)
	}
}

func TestCancelKillsAProgramThatIgnoresTheInterrupt(t *testing.T) {
	response, mark := runUntilCancelled(t, "ignore")
	if mark != "started\n" {
		t.Fatalf("the program saw %q", mark)
	}
	if !strings.Contains(response.Error, "non-zero exit code") {
		t.Fatalf("a killed program is an error, not %+v", response)
	}
}

func TestPluginVersionTranslatesPEP440AsPulumiDoes(t *testing.T) {
	for in, want := range map[string]string{
		"1.0": "1.0.0", "3.18.2": "3.18.2", "1.2.3a4": "1.2.3-alpha.4", "1.2.3b4": "1.2.3-beta.4",
		"1.2.3rc4": "1.2.3-rc.4", "1.2.3.post4": "1.2.3+post4", "1.2.3.dev5": "1.2.3+dev5",
		"1.2.3.post4.dev5": "1.2.3+post4dev5", "2.14.0a1605583329": "2.14.0-alpha.1605583329",
	} {
		if got, ok := pluginVersion(in); !ok || got != want {
			t.Errorf("pluginVersion(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "1!2.0", "1.0+local", "latest"} {
		if got, ok := pluginVersion(bad); ok {
			t.Errorf("pluginVersion(%q) = %q; want no version", bad, got)
		}
	}
}

func TestAPackageIsThePluginItsManifestNames(t *testing.T) {
	pkg := plugin.DependencyInfo{Name: "pulumi-postgresql", Version: "3.18.2"}
	got := packageDependency(pkg, &plugin.PulumiPluginJSON{Resource: true, Name: "postgresql", Version: "3.18.2"})
	if got.Name != "postgresql" || got.Version != "v3.18.2" || got.Kind != "resource" {
		t.Fatalf("got %+v", got)
	}
	if packageDependency(pkg, &plugin.PulumiPluginJSON{Resource: false}) != nil {
		t.Fatal("resource: false names no plugin")
	}
	named := packageDependency(plugin.DependencyInfo{Name: "pulumi-thing", Version: "1.2"}, nil)
	if named.Name != "thing" || named.Version != "v1.2.0" {
		t.Fatalf("a pulumi-* package without a manifest: %+v", named)
	}
}
