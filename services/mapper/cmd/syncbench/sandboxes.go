package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
	"github.com/ownersync/ownersync/workbench/embednats"
)

// sandboxInfo is what the sandboxes process tells the mapper process: where to reach NATS and the
// two CRM sandboxes.
type sandboxInfo struct {
	NATS       string
	SFURL      string
	SFOrgID    string
	HSURL      string
	HSPortalID int64
	HSAppID    int64
	PeakRSSMB  float64 `json:",omitempty"`
}

// serveSandboxes runs NATS and the sandboxes holding one size's CRM users, writes their addresses
// as one JSON line to out, then answers each "mutate" line from in with "ok" (or "error: …")
// after applying the round of CRM changes; it ends, writing its own peak RSS, when in closes.
func serveSandboxes(platformN, crmN int, in io.Reader, out io.Writer) error {
	dir, err := os.MkdirTemp("", "syncbench-nats")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := embednats.Start(embednats.Options{Dir: dir, Port: -1, Name: "bench"})
	if err != nil {
		return err
	}
	defer ns.Stop()
	data := newDataset(platformN, crmN)
	sf, err := sfsim.New(sfsim.Config{DailyLimit: -1})
	if err != nil {
		return err
	}
	defer sf.Close()
	if _, err := sf.Start(""); err != nil {
		return err
	}
	if err := sf.Load(sfsim.Seed{Users: data.sfUsers()}); err != nil {
		return err
	}
	hs, err := hssim.New(hssim.Config{AccessTokens: []string{"pat-bench"}, BurstLimit: -1, DailyLimit: -1})
	if err != nil {
		return err
	}
	defer hs.Close()
	if _, err := hs.Start(""); err != nil {
		return err
	}
	if err := hs.Load(hssim.Seed{Owners: data.hsOwners()}); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(sandboxInfo{NATS: ns.URL(), SFURL: sf.URL(), SFOrgID: sf.OrgID(), HSURL: hs.URL(), HSPortalID: hs.PortalID(), HSAppID: hs.AppID()}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		switch sc.Text() {
		case "mutate":
			if err := data.mutate(sf, hs); err != nil {
				fmt.Fprintf(out, "error: %v\n", err)
			} else {
				fmt.Fprintln(out, "ok")
			}
		default:
			fmt.Fprintf(out, "error: unknown command %q\n", sc.Text())
		}
	}
	return enc.Encode(sandboxInfo{PeakRSSMB: peakRSSMB()})
}

// sandboxes is the sandboxes process as the mapper process sees it.
type sandboxes struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	info sandboxInfo
	// stopped and rss: stop ran, and the peak RSS it read.
	stopped bool
	rss     float64
}

func startSandboxes(platformN, crmN int) (*sandboxes, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-sandboxes", strconv.Itoa(platformN), "-crm", strconv.Itoa(crmN))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sb := &sandboxes{cmd: cmd, in: in, out: bufio.NewReader(outPipe)}
	line, err := sb.out.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &sb.info)
	}
	if err != nil {
		sb.stop()
		return nil, fmt.Errorf("sandboxes process: %w", err)
	}
	return sb, nil
}

// mutate has the sandboxes process apply the round of CRM changes.
func (sb *sandboxes) mutate() error {
	if _, err := fmt.Fprintln(sb.in, "mutate"); err != nil {
		return err
	}
	line, err := sb.out.ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "ok" {
		return errors.New(line)
	}
	return nil
}

// stop ends the sandboxes process and returns its peak RSS (0 when unknown).
func (sb *sandboxes) stop() float64 {
	if sb.stopped {
		return sb.rss
	}
	sb.stopped = true
	_ = sb.in.Close()
	var last sandboxInfo
	if line, err := sb.out.ReadBytes('\n'); err == nil {
		_ = json.Unmarshal(line, &last)
	}
	_ = sb.cmd.Wait()
	sb.rss = last.PeakRSSMB
	return sb.rss
}
