// Command contract asks a model for a typed Go value: contract.Generate
// derives a JSON Schema from the Recipe struct, the pipeline makes the
// model's answer satisfy it (asking again when it does not), and the answer
// comes back decoded into a Recipe. With no provider key in the environment
// it uses the built-in simulator, whose answers satisfy the schema but are
// made of random words.
//
//	go run ./examples/contract
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/contract"
	"github.com/sluice-gw/sluice/pipeline"
)

// A Recipe is the answer asked for. Every field without omitempty is
// required; the jsonschema tags become descriptions and an enum in the
// schema the model sees.
type Recipe struct {
	Title       string       `json:"title" jsonschema:"description=The dish's name"`
	Minutes     int          `json:"minutes" jsonschema:"description=Total time in minutes,minimum=1"`
	Servings    int          `json:"servings" jsonschema:"minimum=1"`
	Ingredients []Ingredient `json:"ingredients" jsonschema:"minItems=1"`
	Steps       []string     `json:"steps" jsonschema:"minItems=1"`
}

// An Ingredient is one line of a Recipe's list.
type Ingredient struct {
	Name     string  `json:"name"`
	Quantity float64 `json:"quantity" jsonschema:"exclusiveMinimum=0"`
	Unit     string  `json:"unit" jsonschema:"enum=g,enum=kg,enum=ml,enum=l,enum=tsp,enum=tbsp,enum=piece"`
}

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	p, err := pipeline.New(ctx, config.Default(getenv), pipeline.Options{})
	if err != nil {
		return err
	}
	defer p.Close()

	req := &sluice.Request{
		Model:    p.Models()[0],
		System:   []sluice.Part{sluice.TextPart("You are a cook. Answer with one recipe.")},
		Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("A quick tomato soup for two.")}}},
	}
	recipe, resp, err := contract.Generate[Recipe](ctx, p, req)
	if err != nil {
		return err // a *sluice.Error: schema_violation when the answer never fitted
	}
	fmt.Fprintf(stdout, "%s answered (%d tokens in, %d out):\n", resp.Model, resp.Usage.InputTokens, resp.Usage.OutputTokens)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(recipe)
}
