// Package local is the `command:local:Command` resource of the integration
// suite's command plugin: a shell command run on create, on update and,
// when given, on delete, with the inputs pulumi_command's Python SDK sends.
package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Command runs shell commands as a resource's lifecycle.
type Command struct{}

// CommandArgs are the inputs pulumi_command.local.Command sends.
type CommandArgs struct {
	Create                 *string           `pulumi:"create,optional"`
	Update                 *string           `pulumi:"update,optional"`
	Delete                 *string           `pulumi:"delete,optional"`
	Dir                    *string           `pulumi:"dir,optional"`
	Environment            map[string]string `pulumi:"environment,optional"`
	Interpreter            []string          `pulumi:"interpreter,optional"`
	Stdin                  *string           `pulumi:"stdin,optional"`
	Logging                *string           `pulumi:"logging,optional"`
	Triggers               []any             `pulumi:"triggers,optional" provider:"replaceOnChanges"`
	AddPreviousOutputInEnv *bool             `pulumi:"addPreviousOutputInEnv,optional"`
	AssetPaths             []string          `pulumi:"assetPaths,optional"`
	ArchivePaths           []string          `pulumi:"archivePaths,optional"`
}

// CommandState is what the last run left: its inputs and its output.
type CommandState struct {
	CommandArgs
	Stdout string `pulumi:"stdout"`
	Stderr string `pulumi:"stderr"`
}

// Create runs `create` (nothing in a preview). The ID is the name and 8
// random hex digits, as pulumi-command's commandController.go makes it.
func (Command) Create(
	ctx context.Context, req infer.CreateRequest[CommandArgs],
) (infer.CreateResponse[CommandState], error) {
	state := CommandState{CommandArgs: req.Inputs}
	id, err := resource.NewUniqueHex(req.Name, 8, 0)
	if err != nil || req.DryRun || req.Inputs.Create == nil {
		return infer.CreateResponse[CommandState]{ID: id, Output: state}, err
	}
	state.Stdout, state.Stderr, err = run(ctx, req.Inputs, *req.Inputs.Create, nil)
	return infer.CreateResponse[CommandState]{ID: id, Output: state}, err
}

// Update runs `update`, or `create` when no update command is given.
func (Command) Update(
	ctx context.Context, req infer.UpdateRequest[CommandArgs, CommandState],
) (infer.UpdateResponse[CommandState], error) {
	state := CommandState{CommandArgs: req.Inputs, Stdout: req.State.Stdout, Stderr: req.State.Stderr}
	command := req.Inputs.Update
	if command == nil {
		command = req.Inputs.Create
	}
	if req.DryRun || command == nil {
		return infer.UpdateResponse[CommandState]{Output: state}, nil
	}
	var err error
	state.Stdout, state.Stderr, err = run(ctx, req.Inputs, *command, &req.State)
	return infer.UpdateResponse[CommandState]{Output: state}, err
}

// Delete runs `delete` when one is given.
func (Command) Delete(ctx context.Context, req infer.DeleteRequest[CommandState]) (infer.DeleteResponse, error) {
	if req.State.Delete == nil {
		return infer.DeleteResponse{}, nil
	}
	_, _, err := run(ctx, req.State.CommandArgs, *req.State.Delete, &req.State)
	return infer.DeleteResponse{}, err
}

// run executes command through the interpreter (`/bin/sh -c` by default) in
// the plugin's working directory (the project's) or `dir`, with `environment`
// added to the plugin's own environment.
func run(ctx context.Context, args CommandArgs, command string, previous *CommandState) (string, string, error) {
	interpreter := args.Interpreter
	if len(interpreter) == 0 {
		interpreter = []string{"/bin/sh", "-c"}
	}
	cmd := exec.CommandContext(ctx, interpreter[0], append(interpreter[1:], command)...)
	if args.Dir != nil {
		cmd.Dir = *args.Dir
	}
	cmd.Env = os.Environ()
	for key, value := range args.Environment {
		cmd.Env = append(cmd.Env, key+"="+value)
	}
	if previous != nil && (args.AddPreviousOutputInEnv == nil || *args.AddPreviousOutputInEnv) {
		cmd.Env = append(cmd.Env, "PULUMI_COMMAND_STDOUT="+previous.Stdout, "PULUMI_COMMAND_STDERR="+previous.Stderr)
	}
	if args.Stdin != nil {
		cmd.Stdin = strings.NewReader(*args.Stdin)
	}
	logging := "stdoutAndStderr"
	if args.Logging != nil {
		logging = *args.Logging
	}
	var stdout, stderr bytes.Buffer
	logger := p.GetLogger(ctx)
	cmd.Stdout = tee(&stdout, logging == "stdout" || logging == "stdoutAndStderr", logger.InfoStatus)
	cmd.Stderr = tee(&stderr, logging == "stderr" || logging == "stdoutAndStderr", logger.InfoStatus)
	err := cmd.Run()
	out := strings.TrimSuffix(stdout.String(), "\n")
	errOut := strings.TrimSuffix(stderr.String(), "\n")
	if err != nil {
		return out, errOut, fmt.Errorf("%w: running %q:\n%s\n%s", err, command, out, errOut)
	}
	return out, errOut, nil
}

type lineLogger struct{ log func(string) }

func (l lineLogger) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		l.log(line)
	}
	return len(b), nil
}

func tee(buffer *bytes.Buffer, show bool, log func(string)) io.Writer {
	if !show {
		return buffer
	}
	return io.MultiWriter(buffer, lineLogger{log})
}
