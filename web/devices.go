package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/device"
)

// The devices page of a platform (/platforms/{id}/devices): its devices
// with when each was last seen and its messages, a form to add one (the
// answer is the device's page with its password, shown once, and its
// quickstart), a CSV import whose answer is the name,password file, and
// Revoke. Each device's page (/platforms/{id}/devices/{name}) is its
// quickstart. It goes through myt.DeviceService, which finds the
// platform as the signed-in user's first (404 otherwise).

type devicesView struct {
	P       *myt.Platform
	Devices []*myt.Device
	Revoked []*myt.Device
	// Add refills the add form after an error (AddErrs); ImportErrs are
	// the import's errors, line by line.
	Add        myt.DeviceNew
	AddErrs    *formErrors
	ImportErrs *formErrors
	CSRF       string
}

type deviceView struct {
	P *myt.Platform
	D *myt.Device
	// Password is set on the page that answers the add, only.
	Password   string
	Quickstart *Quickstart
}

var deviceNotices = map[string]string{
	"revoked": "The device is revoked: its broker user is deleted and its connections closed.",
}

func (s *server) deviceService() (myt.DeviceService, error) {
	if s.cfg.Devices == nil {
		return nil, myt.Errorf(myt.ENOTFOUND, "This server does not manage devices.")
	}
	return s.cfg.Devices, nil
}

func (s *server) devicesView(w http.ResponseWriter, r *http.Request, p *myt.Platform) (*devicesView, error) {
	svc, err := s.deviceService()
	if err != nil {
		return nil, err
	}
	ds, err := svc.FindDevices(r.Context(), p.ID)
	if err != nil {
		return nil, err
	}
	v := &devicesView{P: p, CSRF: s.csrfToken(w, r), AddErrs: &formErrors{}, ImportErrs: &formErrors{}}
	for _, d := range ds {
		if d.Revoked == nil {
			v.Devices = append(v.Devices, d)
		} else {
			v.Revoked = append(v.Revoked, d)
		}
	}
	return v, nil
}

func (s *server) renderDevices(w http.ResponseWriter, r *http.Request, status int, v *devicesView) {
	pg := &page{Title: "Devices · " + v.P.Name, Section: "platforms", Data: v}
	if r.Method == http.MethodGet {
		pg.Notice = deviceNotices[r.URL.Query().Get("ok")]
	}
	s.render(w, r, status, "devices", pg)
}

func (s *server) devicesPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	v, err := s.devicesView(w, r, p)
	if err != nil {
		return err
	}
	s.renderDevices(w, r, http.StatusOK, v)
	return nil
}

// deviceQuickstart is the platform's quickstart for device d: its own
// user, topic and client id (and password, when just made).
func deviceQuickstart(p *myt.Platform, d *myt.Device, password string) *Quickstart {
	q := (&platformView{P: p}).Quickstart()
	if q == nil {
		return nil
	}
	q.User, q.Password, q.ClientID = d.Name, password, d.Name
	q.Topic = p.Endpoints.TopicPrefix + "/" + d.Name + "/data"
	return q
}

func (s *server) deviceAdd(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	svc, err := s.deviceService()
	if err != nil {
		return err
	}
	in := myt.DeviceNew{Name: r.PostForm.Get("name"), Description: r.PostForm.Get("description")}
	sec, err := svc.AddDevice(r.Context(), p.ID, in)
	if err == nil {
		s.log.Info("device added", "user", myt.UserFromContext(r.Context()).Username, "platform", p.ID, "device", sec.Device.Name)
		// Not a redirect: the password is on this answer only.
		v := &deviceView{P: p, D: sec.Device, Password: sec.Password, Quickstart: deviceQuickstart(p, sec.Device, sec.Password)}
		s.render(w, r, http.StatusOK, "device", &page{Title: sec.Device.Name + " · " + p.Name, Section: "platforms", Data: v})
		return nil
	}
	if c := myt.ErrorCode(err); c != myt.EINVALID && c != myt.ECONFLICT {
		return err
	}
	v, verr := s.devicesView(w, r, p)
	if verr != nil {
		return verr
	}
	v.Add = in
	if myt.ErrorCode(err) == myt.ECONFLICT {
		err = &myt.Error{Code: myt.EINVALID, Message: myt.ErrorMessage(err), Fields: []myt.FieldError{{Field: "name", Message: "an active device has this name: choose another, or revoke that one first"}}}
	}
	v.AddErrs = s.errorsFrom(r, err, func(f string) (string, string, bool) {
		switch f {
		case "name":
			return "name", "Name", true
		case "description":
			return "description", "Description", true
		}
		return "", "", false
	})
	s.renderDevices(w, r, http.StatusUnprocessableEntity, v)
	return nil
}

func (s *server) deviceImport(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	svc, err := s.deviceService()
	if err != nil {
		return err
	}
	in, err := uploadedFile(r, "file", 1<<20)
	if err == nil && in == "" {
		in = r.PostForm.Get("csv")
	}
	var ss []*myt.DeviceSecret
	if err == nil {
		ss, err = svc.ImportDevices(r.Context(), p.ID, []byte(in))
	}
	if err == nil {
		s.log.Info("devices imported", "user", myt.UserFromContext(r.Context()).Username, "platform", p.ID, "devices", len(ss))
		var b bytes.Buffer
		if err := device.WriteCSV(&b, ss); err != nil {
			return err
		}
		// The passwords' one copy: a download, never kept by a cache.
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-devices.csv"`, p.Name))
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		_, err = w.Write(b.Bytes())
		return err
	}
	if myt.ErrorCode(err) != myt.EINVALID {
		return err
	}
	v, verr := s.devicesView(w, r, p)
	if verr != nil {
		return verr
	}
	v.ImportErrs = s.errorsFrom(r, err, nil)
	s.renderDevices(w, r, http.StatusUnprocessableEntity, v)
	return nil
}

func (s *server) deviceRevoke(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	svc, err := s.deviceService()
	if err != nil {
		return err
	}
	d, err := svc.RevokeDevice(r.Context(), p.ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	s.log.Info("device revoked", "user", myt.UserFromContext(r.Context()).Username, "platform", p.ID, "device", d.Name)
	http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"/devices?ok=revoked", http.StatusSeeOther)
	return nil
}

func (s *server) devicePage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	svc, err := s.deviceService()
	if err != nil {
		return err
	}
	d, err := svc.FindDevice(r.Context(), p.ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	v := &deviceView{P: p, D: d, Quickstart: deviceQuickstart(p, d, "")}
	s.render(w, r, http.StatusOK, "device", &page{Title: d.Name + " · " + p.Name, Section: "platforms", Data: v})
	return nil
}
