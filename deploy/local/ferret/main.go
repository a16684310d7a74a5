// Command ferretdb-local runs FerretDB v1 (SQLite backend) embedded, on one TCP address.
//
// A plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb` binary panics at start because it
// wants a generated build/version/version.txt; embedding the ferretdb package avoids that.
//
// Usage: ferretdb-local [-listen 127.0.0.1:27017] [-sqlite-dir .local/ferret/]
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("sqlite-dir", ".local/ferret", "directory for the SQLite files")
	flag.Parse()

	abs, err := filepath.Abs(*dir)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		log.Fatal(err)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	log.Printf("ferretdb-local: listening on %s, SQLite in %s", *listen, abs)
	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
