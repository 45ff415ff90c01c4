package myt

import (
	"context"
	"regexp"
	"time"
)

// Device is one device's own MQTT/AMQP credential on a running platform:
// a broker user named like the device that may publish and subscribe only
// under its own topics (MQTT "<prefix>/<name>/...", routing keys
// "<prefix>.<name>.#"). MyT keeps the device list and each password's
// hash; the broker gets the hash, never the password.
type Device struct {
	ID          int64      `json:"id"`
	PlatformID  int64      `json:"-"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Created     time.Time  `json:"created"`
	Revoked     *time.Time `json:"revoked,omitempty"`
	// PasswordHash is RabbitMQ's rabbit_password_hashing_sha256 of the
	// password (base64 of a 4-byte salt and SHA-256(salt || password)),
	// what a re-apply sends the broker. Never shown.
	PasswordHash string `json:"-"`
	// LastSeen and Messages are what the broker last said of the device's
	// connections (Device.Activity): nil and 0 until it was seen.
	LastSeen *time.Time `json:"lastSeen,omitempty"`
	// Connected is whether it had a connection open at the last look.
	Connected bool `json:"connected"`
	// Messages counts the messages it published over its open
	// connections, as the broker's channel statistics report them (they
	// start again at 0 with each connection).
	Messages int64 `json:"messages"`
}

// DeviceSecret is a new device's password, returned once by AddDevice and
// ImportDevices; MyT keeps only its hash.
type DeviceSecret struct {
	Device   *Device `json:"device"`
	Password string  `json:"password"`
}

// DeviceNew is a device to add.
type DeviceNew struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// deviceName is what a device may be called: it is a broker user and an
// MQTT topic level, so no '/', '.', '+', '#', ':' (RabbitMQ's MQTT plugin
// reads "vhost:user"), and no upper case (topics are case-sensitive and
// people type them).
var deviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidateDeviceName returns an EINVALID error for a name a device
// cannot have. Names starting with "myt-" are the platform's own broker
// users.
func ValidateDeviceName(name string) error {
	msg := ""
	switch {
	case name == "":
		msg = "required"
	case !deviceName.MatchString(name):
		msg = "use 1 to 63 lower-case letters, digits, '-' and '_', starting with a letter or digit (it is the device's user name and its MQTT topic level)"
	case len(name) >= 4 && name[:4] == "myt-", name == "guest":
		msg = "names starting with myt- (and guest) are the platform's own broker users"
	}
	if msg != "" {
		return Invalid("Check the device's name.", []FieldError{{Field: "name", Message: msg}})
	}
	return nil
}

// DeviceService manages a running platform's device credentials. Like
// PlatformService it acts only on the principal's own platforms (another
// user's platform is ENOTFOUND).
type DeviceService interface {
	// FindDevices lists the platform's devices (revoked ones too, after
	// the active ones), with what the broker says of their activity when
	// the platform runs and answers.
	FindDevices(ctx context.Context, platformID int64) ([]*Device, error)
	// FindDevice returns one active device by name; ENOTFOUND when none.
	FindDevice(ctx context.Context, platformID int64, name string) (*Device, error)
	// AddDevice makes a password for a new device, stores its hash and
	// creates its broker user with its topic permissions. EINVALID for a
	// bad name or a platform that is not running, ECONFLICT when an
	// active device has the name.
	AddDevice(ctx context.Context, platformID int64, d DeviceNew) (*DeviceSecret, error)
	// ImportDevices adds every device of a CSV document (name[,description]
	// per line, an optional "name,description" header) or none: EINVALID
	// listing each bad line ("line 3: ...").
	ImportDevices(ctx context.Context, platformID int64, csv []byte) ([]*DeviceSecret, error)
	// RevokeDevice marks the device revoked, deletes its broker user and
	// closes its open connections. ENOTFOUND when no active device has
	// the name.
	RevokeDevice(ctx context.Context, platformID int64, name string) (*Device, error)
}
