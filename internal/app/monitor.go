package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/web/statuspage"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/monitor/host"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/vault"
)

// OpenNotifier builds the notification channels of alerts.channels (their
// secrets resolved now) and the notifier that records every attempt.
func (a *App) OpenNotifier() (*notify.Notifier, error) {
	if a.Notifier != nil {
		return a.Notifier, nil
	}
	chs, err := notify.Channels(a.Config.Alerts.Channels, a.getenv, os.ReadFile)
	if err != nil {
		return nil, fmt.Errorf("alerts.channels: %w", err)
	}
	n, err := notify.NewNotifier(a.DB, chs, notify.Options{Bus: a.Events, Logger: a.Logger, Now: a.now})
	if err != nil {
		return nil, err
	}
	a.Notifier = n
	return n, nil
}

// OpenMonitor builds supervision: the notifier (when withNotifier: a
// process that only reads what the monitor recorded, such as `bulwark
// status export`, need not resolve the channels' secrets), the checks, the
// alert rules and the host collector (SMART and apt upgrades included).
func (a *App) OpenMonitor(withNotifier bool) (*monitor.Service, error) {
	if a.Monitor != nil {
		return a.Monitor, nil
	}
	var n monitor.Deliverer
	if withNotifier {
		nt, err := a.OpenNotifier()
		if err != nil {
			return nil, err
		}
		n = nt
	}
	cfg := a.Config
	m, err := monitor.New(monitor.Options{
		Monitor: cfg.Monitor, Alerts: cfg.Alerts, Status: cfg.Status,
		DB: a.DB, Events: a.Events, Notifier: n, Logger: a.Logger, Now: a.now,
		Getenv: a.getenv, ReadFile: os.ReadFile,
		Host: host.New(host.Options{Processes: cfg.Monitor.Processes, SMART: true, Updates: true, Now: a.now}),
	})
	if err != nil {
		return nil, err
	}
	a.Monitor = m
	return m, nil
}

// runMonitor runs supervision until ctx ends; done is closed then.
func (a *App) runMonitor(ctx context.Context) (done <-chan struct{}) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		if err := a.Monitor.Run(ctx); err != nil {
			a.Logger.Warn("monitor stopped", "err", err)
		}
	}()
	return ch
}

// statusHandler serves the status pages when supervision runs.
func (a *App) statusHandler() http.Handler {
	if a.Monitor == nil {
		return nil
	}
	return statuspage.Handler("/status", a.Monitor)
}

// publishStatus exports the status pages to status.publish's destinations
// at the start, on every change the monitor signals (at most once every
// 10 s) and hourly, until ctx ends.
func (a *App) publishStatus(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	dests := a.Config.Status.Publish
	if len(dests) == 0 {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		hourly := time.NewTicker(time.Hour)
		defer hourly.Stop()
		for {
			if err := a.PublishStatus(ctx); err != nil && ctx.Err() == nil {
				a.Logger.Warn("status pages: publish", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-a.Monitor.Changes():
			case <-hourly.C:
			}
			select { // let a burst of changes settle
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
		}
	}()
	return done
}

// PublishStatus renders the status pages and writes them to every
// destination of status.publish.
func (a *App) PublishStatus(ctx context.Context) error {
	pages, err := statuspage.Pages(ctx, a.Monitor)
	if err != nil {
		return err
	}
	files, err := statuspage.Files(pages)
	if err != nil {
		return err
	}
	var errs []error
	for i, d := range a.Config.Status.Publish {
		var err error
		switch {
		case d.Dir != "":
			err = statuspage.Export(d.Dir, files)
		case d.S3.Bucket != "":
			err = a.publishS3(ctx, d.S3, files)
		case d.Vault.URL != "":
			err = a.publishVault(ctx, d.Vault, files)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("status.publish[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (a *App) publishS3(ctx context.Context, c config.StatusS3, files []statuspage.File) error {
	key, err := c.AccessKey.Resolve(a.getenv, os.ReadFile)
	if err != nil {
		return fmt.Errorf("access_key: %w", err)
	}
	secret, err := c.SecretKey.Resolve(a.getenv, os.ReadFile)
	if err != nil {
		return fmt.Errorf("secret_key: %w", err)
	}
	cl, err := minio.New(c.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(key, secret, ""), Secure: !c.Insecure, Region: c.Region})
	if err != nil {
		return err
	}
	for _, f := range files {
		name := path.Join(c.Prefix, f.Path)
		if _, err := cl.PutObject(ctx, c.Bucket, name, bytes.NewReader(f.Data), int64(len(f.Data)),
			minio.PutObjectOptions{ContentType: f.Type, CacheControl: "no-cache"}); err != nil {
			return fmt.Errorf("upload %s to %s: %w", name, c.Bucket, err)
		}
	}
	return nil
}

// publishVault PUTs the files to a vault's /_status/ with a status token.
func (a *App) publishVault(ctx context.Context, c config.StatusVault, files []statuspage.File) error {
	token, err := c.Token.Resolve(a.getenv, os.ReadFile)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return fmt.Errorf("ca_cert: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ca_cert: %s holds no PEM certificate", c.CACert)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	defer client.CloseIdleConnections()
	base := strings.TrimSuffix(c.URL, "/") + vault.StatusPrefix
	for _, f := range files {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+f.Path, bytes.NewReader(f.Data))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", f.Type)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("upload %s: %w", f.Path, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("upload %s: the vault answered %s: %s", f.Path, resp.Status, strings.TrimSpace(string(msg)))
		}
	}
	return nil
}
