// Command embed runs Sluice in-process: the same pipeline as the gateway,
// without HTTP. With no provider key in the environment it uses the built-in
// simulator.
//
//	go run ./examples/embed
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/sluice-gw/sluice"
	"github.com/sluice-gw/sluice/config"
	"github.com/sluice-gw/sluice/pipeline"
)

func main() {
	ctx := context.Background()
	cfg := config.Default(os.Getenv)
	p, err := pipeline.New(ctx, cfg, pipeline.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	model := p.Models()[0]
	req := &sluice.Request{
		Model:    model,
		Messages: []sluice.Message{{Role: sluice.RoleUser, Parts: []sluice.Part{sluice.TextPart("Say hello in five words.")}}},
	}

	// One answer.
	resp, err := p.Complete(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n(%d tokens in, %d out)\n\n", resp.Model, resp.Message.Text(), resp.Usage.InputTokens, resp.Usage.OutputTokens)

	// The same as a stream, printed as it arrives.
	req.Stream = true
	s, err := p.Stream(ctx, req)
	if err != nil {
		log.Fatal(err) // before the first event: safe to retry
	}
	defer s.Close()
	for ev, err := range s.All() {
		if err != nil {
			log.Fatal(err) // mid-stream: the partial text above stays valid
		}
		switch ev.Type {
		case sluice.EventText:
			fmt.Print(ev.Text)
		case sluice.EventFinish:
			fmt.Printf("\n[finish: %s]\n", ev.FinishReason)
		}
	}
}
