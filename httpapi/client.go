package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/myt-iot/myt"
)

// Client calls the JSON API. Errors from the server come back as *myt.Error
// with the server's code, message and fields.
type Client struct {
	// BaseURL is the server, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// Token is the API token sent as a bearer token.
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for the server at baseURL.
func NewClient(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// do sends a request; body is JSON-encoded unless it is a []byte (sent as
// is with contentType). out, when not nil, receives the JSON response.
func (c *Client) do(ctx context.Context, method, path string, body any, contentType string, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd, contentType = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("bad server URL %q: %w", c.BaseURL, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	req.Header.Set("User-Agent", "myt-cli/"+myt.Version)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		// The URL holds no secret: tokens travel in a header.
		return fmt.Errorf("cannot reach MyT at %s: %w", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var eb errorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return fmt.Errorf("%s %s: unexpected answer %s from %s", method, path, resp.Status, c.BaseURL)
		}
		return &myt.Error{Code: eb.Error.Code, Message: eb.Error.Message, Fields: eb.Error.Fields}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad response: %w", method, path, err)
	}
	return nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Status reports the server's version and whether setup is pending.
func (c *Client) Status(ctx context.Context) (*StatusResponse, error) {
	var out StatusResponse
	return &out, c.do(ctx, "GET", "/api/v1/status", nil, "", &out)
}

// Login exchanges a username and password for a new API token.
func (c *Client) Login(ctx context.Context, username, password, tokenName string) (*TokenResponse, error) {
	var out TokenResponse
	return &out, c.do(ctx, "POST", "/api/v1/login", LoginRequest{Username: username, Password: password, TokenName: tokenName}, "", &out)
}

// Setup creates the first account and returns a token for it.
func (c *Client) Setup(ctx context.Context, username, password, tokenName string) (*TokenResponse, error) {
	var out TokenResponse
	return &out, c.do(ctx, "POST", "/api/v1/setup", LoginRequest{Username: username, Password: password, TokenName: tokenName}, "", &out)
}

// Logout revokes the client's token.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, "POST", "/api/v1/logout", nil, "", nil)
}

// Me returns the signed-in user.
func (c *Client) Me(ctx context.Context) (*myt.User, error) {
	var out myt.User
	return &out, c.do(ctx, "GET", "/api/v1/me", nil, "", &out)
}

// Tokens lists the user's API tokens.
func (c *Client) Tokens(ctx context.Context) ([]*myt.Session, error) {
	var out []*myt.Session
	return out, c.do(ctx, "GET", "/api/v1/tokens", nil, "", &out)
}

// DeleteToken revokes an API token.
func (c *Client) DeleteToken(ctx context.Context, id int64) error {
	return c.do(ctx, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", id), nil, "", nil)
}

// Credentials lists the user's credentials, secrets masked.
func (c *Client) Credentials(ctx context.Context) ([]*myt.Credential, error) {
	var out []*myt.Credential
	return out, c.do(ctx, "GET", "/api/v1/credentials", nil, "", &out)
}

// CreateCredential saves a credential.
func (c *Client) CreateCredential(ctx context.Context, req CredentialRequest) (*myt.Credential, error) {
	var out myt.Credential
	return &out, c.do(ctx, "POST", "/api/v1/credentials", req, "", &out)
}

// DeleteCredential deletes a credential.
func (c *Client) DeleteCredential(ctx context.Context, id int64) error {
	return c.do(ctx, "DELETE", fmt.Sprintf("/api/v1/credentials/%d", id), nil, "", nil)
}

// Platforms lists the user's platforms.
func (c *Client) Platforms(ctx context.Context) ([]*myt.Platform, error) {
	var out []*myt.Platform
	return out, c.do(ctx, "GET", "/api/v1/platforms", nil, "", &out)
}

// Platform returns one platform.
func (c *Client) Platform(ctx context.Context, id int64) (*myt.Platform, error) {
	var out myt.Platform
	return &out, c.do(ctx, "GET", fmt.Sprintf("/api/v1/platforms/%d", id), nil, "", &out)
}

// PlatformByName finds a platform by name (ENOTFOUND when none).
func (c *Client) PlatformByName(ctx context.Context, name string) (*myt.Platform, error) {
	var out []*myt.Platform
	if err := c.do(ctx, "GET", "/api/v1/platforms?name="+url.QueryEscape(name), nil, "", &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, myt.Errorf(myt.ENOTFOUND, "You have no platform named %q.", name)
	}
	return out[0], nil
}

// CreatePlatform creates a platform from a design document (YAML or JSON,
// sent as is so the server reports errors against the user's own text).
func (c *Client) CreatePlatform(ctx context.Context, doc []byte) (*myt.Platform, error) {
	var out myt.Platform
	return &out, c.do(ctx, "POST", "/api/v1/platforms", doc, "application/yaml", &out)
}

// ValidateDesign checks a design document without saving it.
func (c *Client) ValidateDesign(ctx context.Context, doc []byte) (*myt.Design, error) {
	var out ValidateResponse
	return out.Design, c.do(ctx, "POST", "/api/v1/designs/validate", doc, "application/yaml", &out)
}

// DeletePlatform deletes a platform.
func (c *Client) DeletePlatform(ctx context.Context, id int64) error {
	return c.do(ctx, "DELETE", fmt.Sprintf("/api/v1/platforms/%d", id), nil, "", nil)
}

// Raw sends any request (for tests and scripts) and decodes the answer.
func (c *Client) Raw(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	if body == nil {
		return c.do(ctx, method, path, nil, contentType, out)
	}
	return c.do(ctx, method, path, body, contentType, out)
}

// StartJob starts a job on a platform.
func (c *Client) StartJob(ctx context.Context, platformID int64, req myt.JobRequest) (*myt.Job, error) {
	var j myt.Job
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/jobs", platformID), req, "", &j)
	return &j, err
}

// Jobs lists jobs, newest first; platformID 0 means every platform.
func (c *Client) Jobs(ctx context.Context, platformID int64, limit int) ([]*myt.Job, error) {
	q := url.Values{}
	if platformID != 0 {
		q.Set("platform", fmt.Sprint(platformID))
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	var out []*myt.Job
	err := c.do(ctx, http.MethodGet, "/api/v1/jobs?"+q.Encode(), nil, "", &out)
	return out, err
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id int64) (*myt.Job, error) {
	var j myt.Job
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%d", id), nil, "", &j)
	return &j, err
}

// ApproveJob applies the plan of a job awaiting approval.
func (c *Client) ApproveJob(ctx context.Context, id int64, confirm string) (*myt.Job, error) {
	var j myt.Job
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/jobs/%d/approve", id), Approval{Confirm: confirm}, "", &j)
	return &j, err
}

// CancelJob cancels an active job.
func (c *Client) CancelJob(ctx context.Context, id int64) (*myt.Job, error) {
	var j myt.Job
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/jobs/%d/cancel", id), nil, "", &j)
	return &j, err
}

// JobLog returns the log chunks after seq after; with wait > 0 the server
// holds the request until there is more or the job ends.
func (c *Client) JobLog(ctx context.Context, id, after int64, wait time.Duration) (*JobLog, error) {
	q := url.Values{"after": {fmt.Sprint(after)}}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var l JobLog
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/jobs/%d/log?%s", id, q.Encode()), nil, "", &l)
	return &l, err
}

// PlatformSecret reveals one of the platform's revealable secrets.
func (c *Client) PlatformSecret(ctx context.Context, id int64, name string) (string, error) {
	var s RevealedSecret
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/platforms/%d/secrets/%s", id, url.PathEscape(name)), nil, "", &s)
	return s.Value, err
}

// PlatformCA returns the platform's CA certificate (PEM).
func (c *Client) PlatformCA(ctx context.Context, id int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/platforms/%d/ca.crt", c.BaseURL, id), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach MyT at %s: %w", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
			return nil, &myt.Error{Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return nil, fmt.Errorf("GET ca.crt: %s", resp.Status)
	}
	return b, nil
}

// PublishCode starts a publish job of code on the platform.
func (c *Client) PublishCode(ctx context.Context, platformID int64, code string) (*myt.Job, error) {
	var j myt.Job
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/code", platformID), CodeRequest{Code: code}, "", &j)
	return &j, err
}

// CodeVersions lists the platform's handler versions, newest first.
func (c *Client) CodeVersions(ctx context.Context, platformID int64) ([]*myt.CodeVersion, error) {
	var out []*myt.CodeVersion
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/platforms/%d/code/versions", platformID), nil, "", &out)
	return out, err
}

// CodeVersion returns one handler version.
func (c *Client) CodeVersion(ctx context.Context, platformID int64, version int) (*myt.CodeVersion, error) {
	var v myt.CodeVersion
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/platforms/%d/code/versions/%d", platformID, version), nil, "", &v)
	return &v, err
}

// RollbackCode publishes an earlier handler version again.
func (c *Client) RollbackCode(ctx context.Context, platformID int64, version int) (*myt.Job, error) {
	var j myt.Job
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/code/versions/%d/rollback", platformID, version), nil, "", &j)
	return &j, err
}
