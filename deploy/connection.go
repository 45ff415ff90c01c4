package deploy

import (
	"context"

	"github.com/myt-iot/myt"
)

var _ myt.ConnectionService = (*Runner)(nil)

// PlatformCA implements myt.ConnectionService.
func (r *Runner) PlatformCA(ctx context.Context, platformID int64) ([]byte, error) {
	if _, err := r.cfg.Platforms.FindPlatformByID(ctx, platformID); err != nil {
		return nil, err
	}
	b, err := r.cfg.Secrets.Get(ctx, platformID, secretCACert)
	if myt.ErrorCode(err) == myt.ENOTFOUND {
		return nil, myt.Errorf(myt.ENOTFOUND, "The platform has no CA yet: deploy it first.")
	}
	return b, err
}

// PlatformSecret implements myt.ConnectionService.
func (r *Runner) PlatformSecret(ctx context.Context, platformID int64, name string) (string, error) {
	if name != myt.SecretGrafanaAdmin && name != myt.SecretDevice {
		return "", myt.Errorf(myt.EINVALID, "%q is not a secret that can be shown (allowed: %s, %s).", name, myt.SecretGrafanaAdmin, myt.SecretDevice)
	}
	if _, err := r.cfg.Platforms.FindPlatformByID(ctx, platformID); err != nil {
		return "", err
	}
	b, err := r.cfg.Secrets.Get(ctx, platformID, name)
	if myt.ErrorCode(err) == myt.ENOTFOUND {
		return "", myt.Errorf(myt.ENOTFOUND, "The platform has no %s yet: deploy it first.", name)
	}
	if err == nil {
		u := myt.UserFromContext(ctx)
		r.log.Info("platform secret revealed", "platform", platformID, "secret", name, "user", u.Username)
	}
	return string(b), err
}
