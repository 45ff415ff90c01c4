package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/myt-iot/myt"
)

// DeviceImportRequest is the body of an import: the CSV document
// (name[,description] per line).
type DeviceImportRequest struct {
	CSV string `json:"csv"`
}

func (s *Server) devices() (myt.DeviceService, error) {
	if s.cfg.Devices == nil {
		return nil, myt.Errorf(myt.ENOTFOUND, "This server does not manage devices.")
	}
	return s.cfg.Devices, nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ds, err := s.devices()
	if err != nil {
		return err
	}
	out, err := ds.FindDevices(r.Context(), id)
	if err != nil {
		return err
	}
	if out == nil {
		out = []*myt.Device{}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ds, err := s.devices()
	if err != nil {
		return err
	}
	d, err := ds.FindDevice(r.Context(), id, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) addDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ds, err := s.devices()
	if err != nil {
		return err
	}
	var req myt.DeviceNew
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := ds.AddDevice(r.Context(), id, req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/api/v1/platforms/%d/devices/%s", id, url.PathEscape(out.Device.Name)))
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) importDevices(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ds, err := s.devices()
	if err != nil {
		return err
	}
	var req DeviceImportRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	out, err := ds.ImportDevices(r.Context(), id, []byte(req.CSV))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	ds, err := s.devices()
	if err != nil {
		return err
	}
	d, err := ds.RevokeDevice(r.Context(), id, r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// Devices lists the platform's devices, with what the broker says of
// their activity.
func (c *Client) Devices(ctx context.Context, platformID int64) ([]*myt.Device, error) {
	var out []*myt.Device
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/platforms/%d/devices", platformID), nil, "", &out)
	return out, err
}

// AddDevice adds a device; its password is in the answer only.
func (c *Client) AddDevice(ctx context.Context, platformID int64, d myt.DeviceNew) (*myt.DeviceSecret, error) {
	var out myt.DeviceSecret
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/devices", platformID), d, "", &out)
	return &out, err
}

// ImportDevices adds every device of a CSV document, or none.
func (c *Client) ImportDevices(ctx context.Context, platformID int64, csv []byte) ([]*myt.DeviceSecret, error) {
	var out []*myt.DeviceSecret
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/platforms/%d/devices/import", platformID), DeviceImportRequest{CSV: string(csv)}, "", &out)
	return out, err
}

// RevokeDevice revokes a device: its broker user goes, with its
// connections.
func (c *Client) RevokeDevice(ctx context.Context, platformID int64, name string) (*myt.Device, error) {
	var out myt.Device
	err := c.do(ctx, http.MethodDelete, fmt.Sprintf("/api/v1/platforms/%d/devices/%s", platformID, url.PathEscape(name)), nil, "", &out)
	return &out, err
}
