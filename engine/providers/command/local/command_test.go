package local

import (
	"context"
	"regexp"
	"testing"

	"github.com/pulumi/pulumi-go-provider/infer"
)

// pulumi-command makes a Command's ID with resource.NewUniqueHex(name, 8, 0).
func TestACommandsIDIsItsNameAndEightHexDigits(t *testing.T) {
	create := "true"
	seen := map[string]bool{}
	for range 3 {
		response, err := Command{}.Create(context.Background(), infer.CreateRequest[CommandArgs]{
			Name: "naap-push-command", Inputs: CommandArgs{Create: &create}, DryRun: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^naap-push-command[0-9a-f]{8}$`).MatchString(response.ID) {
			t.Fatalf("ID %q", response.ID)
		}
		seen[response.ID] = true
	}
	if len(seen) != 3 {
		t.Fatalf("IDs repeat: %v", seen)
	}
}
