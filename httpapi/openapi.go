package httpapi

import (
	"net/http"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/credential"
)

func alertKinds() []string {
	return []string{string(alert.KindDown), string(alert.KindQueueDepth), string(alert.KindDeadLetters), string(alert.KindDisk), string(alert.KindCertificate)}
}

// doc describes one route in the OpenAPI document.
type doc struct {
	summary  string
	request  string // schema name of the JSON body, "" for none
	response string // schema name of the success body, "" for 204
	status   string
	list     bool // the response is an array of response
}

var docs = map[string]doc{
	"GET /api/v1/openapi.json":                                     {summary: "This OpenAPI document", response: "Object", status: "200"},
	"GET /api/v1/status":                                           {summary: "Version and whether first-run setup is pending", response: "Status", status: "200"},
	"POST /api/v1/setup":                                           {summary: "Create the first (admin) account and return an API token; only before any account exists", request: "Login", response: "Token", status: "201"},
	"POST /api/v1/login":                                           {summary: "Exchange a username and password for a new API token, which expires after the server's token lifetime without use (rate-limited: 429 with Retry-After)", request: "Login", response: "Token", status: "201"},
	"POST /api/v1/logout":                                          {summary: "Revoke the token this request is made with", status: "204"},
	"GET /api/v1/me":                                               {summary: "The signed-in user", response: "User", status: "200"},
	"POST /api/v1/me/password":                                     {summary: "Change your password (your credentials stay readable); every other session and token of yours ends", request: "Password", status: "204"},
	"POST /api/v1/me/lost-credentials":                             {summary: "Delete credentials made unreadable by an admin password reset", status: "204"},
	"GET /api/v1/tokens":                                           {summary: "List your API tokens", response: "Session", list: true, status: "200"},
	"POST /api/v1/tokens":                                          {summary: "Create an API token; the token is returned once", request: "TokenRequest", response: "Token", status: "201"},
	"DELETE /api/v1/tokens/{id}":                                   {summary: "Revoke an API token", status: "204"},
	"GET /api/v1/credential-kinds":                                 {summary: "Credential kinds and their fields", response: "Object", list: true, status: "200"},
	"GET /api/v1/credentials":                                      {summary: "List your credentials (secrets masked); ?kind= filters", response: "Credential", list: true, status: "200"},
	"POST /api/v1/credentials":                                     {summary: "Save a credential; secret fields are sealed and never returned", request: "CredentialRequest", response: "Credential", status: "201"},
	"GET /api/v1/credentials/{id}":                                 {summary: "One of your credentials (secrets masked)", response: "Credential", status: "200"},
	"DELETE /api/v1/credentials/{id}":                              {summary: "Delete a credential no platform uses", status: "204"},
	"POST /api/v1/designs/validate":                                {summary: "Validate a design document (JSON or YAML) and return it with defaults", request: "Design", response: "Validated", status: "200"},
	"GET /api/v1/platforms":                                        {summary: "List your platforms; ?name= filters", response: "Platform", list: true, status: "200"},
	"POST /api/v1/platforms":                                       {summary: "Create a platform from a design document (JSON or YAML); status starts as designed", request: "Design", response: "Platform", status: "201"},
	"GET /api/v1/platforms/{id}":                                   {summary: "One of your platforms", response: "Platform", status: "200"},
	"PUT /api/v1/platforms/{id}":                                   {summary: "Replace a platform's design (the name cannot change)", request: "Design", response: "Platform", status: "200"},
	"DELETE /api/v1/platforms/{id}":                                {summary: "Delete a platform that is not deployed", status: "204"},
	"POST /api/v1/platforms/{id}/jobs":                             {summary: "Start a deploy, update or destroy job; 409 names the platform's active job", request: "JobRequest", response: "Job", status: "202"},
	"GET /api/v1/platforms/{id}/ca.crt":                            {summary: "The platform's CA certificate (PEM), for devices", response: "", status: "200"},
	"GET /api/v1/platforms/{id}/secrets/{name}":                    {summary: "Reveal grafana_admin_password or rabbitmq_device_password", response: "RevealedSecret", status: "200"},
	"GET /api/v1/platforms/{id}/health":                            {summary: "The platform's last poll: each component up or down, with the reason", response: "Health", status: "200"},
	"GET /api/v1/platforms/{id}/metrics/{metric}":                  {summary: "A metric's history (?range=1h|24h|168h, or ?from=&to= in RFC 3339): gauges as values, counters as rates per second", response: "MetricSeries", status: "200"},
	"POST /api/v1/platforms/{id}/code/test":                        {summary: "Try a handler on samples (NDJSON lines) or on the oldest dead letters (deadLetters: N) in the platform's worker, beside the running handler", request: "CodeTestRequest", response: "CodeTest", status: "200"},
	"GET /api/v1/platforms/{id}/dead":                              {summary: "The oldest dead letters (?limit=1-500, default 50) with their reasons, and how many wait; they stay in the queue", response: "DeadLetters", status: "200"},
	"POST /api/v1/platforms/{id}/dead/replay":                      {summary: "Send every dead letter through the current handler again; those that fail again return to the queue", response: "DeadLetterReplay", status: "200"},
	"DELETE /api/v1/platforms/{id}/dead":                           {summary: "Delete every dead letter", response: "Purged", status: "200"},
	"GET /api/v1/platforms/{id}/export":                            {summary: "Stream the platform's records (?from=&to= RFC 3339 or a date, to exclusive, a date as to meaning its whole day; ?device=; ?format=csv|ndjson, default ndjson) as an attachment, in time order, from its worker through MyT; an export cut short ends without its last chunk, never as if complete", response: "", status: "200"},
	"POST /api/v1/platforms/{id}/move":                             {summary: "Stream the platform's records (NDJSON export) into another running platform's import (any database kind), keeping ids: moving again adds no record", request: "MoveRequest", response: "Move", status: "200"},
	"POST /api/v1/platforms/{id}/code":                             {summary: "Publish a new handler to a running platform: a publish job swaps it into every worker, losing and repeating no message", request: "CodeRequest", response: "Job", status: "202"},
	"GET /api/v1/platforms/{id}/devices":                           {summary: "The platform's devices (active by name, then revoked), with connected, lastSeen and messages as the broker last reported them", response: "Device", list: true, status: "200"},
	"POST /api/v1/platforms/{id}/devices":                          {summary: "Add a device: a broker user of its name that may use only MQTT topics <prefix>/<name>/...; its password is in this answer only", request: "DeviceNew", response: "DeviceSecret", status: "201"},
	"POST /api/v1/platforms/{id}/devices/import":                   {summary: "Add every device of a CSV document (name[,description] per line) or none: 400 lists each bad line; the passwords are in this answer only", request: "DeviceImport", response: "DeviceSecret", list: true, status: "201"},
	"GET /api/v1/platforms/{id}/devices/{name}":                    {summary: "One active device", response: "Device", status: "200"},
	"DELETE /api/v1/platforms/{id}/devices/{name}":                 {summary: "Revoke a device: its broker user is deleted and its open connections closed", response: "Device", status: "200"},
	"GET /api/v1/platforms/{id}/code/versions":                     {summary: "Every handler version the platform ran, newest first", response: "CodeVersion", list: true, status: "200"},
	"GET /api/v1/platforms/{id}/code/versions/{version}":           {summary: "One handler version", response: "CodeVersion", status: "200"},
	"POST /api/v1/platforms/{id}/code/versions/{version}/rollback": {summary: "Publish an earlier version's handler again", response: "Job", status: "202"},
	"GET /api/v1/platforms/{id}/alerts/channels":                   {summary: "The platform's alert channels (a webhook's URL and secret are never returned: host and signed only)", response: "AlertChannel", list: true, status: "200"},
	"POST /api/v1/platforms/{id}/alerts/channels":                  {summary: "Add an alert channel: a webhook (url, optional HMAC secret, sealed) or email (to: addresses, sent through the server's SMTP relay)", request: "AlertChannelRequest", response: "AlertChannel", status: "201"},
	"PATCH /api/v1/platforms/{id}/alerts/channels/{channel}":       {summary: "Change a channel's name, a webhook's url or secret (\"\" removes it), or an email channel's addresses", request: "AlertChannelPatch", response: "AlertChannel", status: "200"},
	"DELETE /api/v1/platforms/{id}/alerts/channels/{channel}":      {summary: "Delete an alert channel (its deliveries leave the history)", status: "204"},
	"POST /api/v1/platforms/{id}/alerts/channels/{channel}/test":   {summary: "Send one test notification to the channel now; delivered false and the error when the receiver or relay refused it", response: "AlertTest", status: "200"},
	"GET /api/v1/platforms/{id}/alerts/rules":                      {summary: "The platform's alert rules with their state (the defaults are created on first use)", response: "AlertRule", list: true, status: "200"},
	"PATCH /api/v1/platforms/{id}/alerts/rules/{rule}":             {summary: "Enable or disable a rule, or change its threshold, for and clearFor (Go durations); disabling resets its state", request: "AlertRulePatch", response: "AlertRule", status: "200"},
	"GET /api/v1/platforms/{id}/alerts/events":                     {summary: "Alert history, newest first, with each channel's delivery; ?limit=1-200 (50), ?before=the previous page's next", response: "AlertEvents", status: "200"},
	"GET /api/v1/jobs":                                             {summary: "Your jobs, newest first; ?platform=ID&limit=N filter", response: "Job", list: true, status: "200"},
	"GET /api/v1/jobs/{id}":                                        {summary: "One job: state, steps, plan", response: "Job", status: "200"},
	"POST /api/v1/jobs/{id}/approve":                               {summary: "Apply the plan of a job awaiting approval (confirm: the platform name, when the plan destroys data)", request: "Approval", response: "Job", status: "200"},
	"POST /api/v1/jobs/{id}/cancel":                                {summary: "Cancel an active job; its tools are stopped", response: "Job", status: "200"},
	"GET /api/v1/platforms/{id}/backups":                           {summary: "The platform's backups, newest first, with size, start, duration, SHA-256 and state; only state ok is good (failed and cut ones are listed as failed)", response: "Backup", list: true, status: "200"},
	"POST /api/v1/platforms/{id}/backups":                          {summary: "Start a backup job: a native dump inside the database container, streamed into MyT's data directory, checksummed and verified (encrypt: sealed with a key the server key seals)", request: "BackupRequest", response: "Job", status: "202"},
	"POST /api/v1/platforms/{id}/restore":                          {summary: "Start a restore job: a good backup of the same database kind replaces the platform's data (confirm: the platform's name)", request: "RestoreRequest", response: "Job", status: "202"},
	"GET /api/v1/platforms/{id}/backup-schedule":                   {summary: "The platform's backup schedule (unavailable says why it cannot run: ssh and cloud platforms)", response: "BackupSchedule", status: "200"},
	"PUT /api/v1/platforms/{id}/backup-schedule":                   {summary: "Set the platform's backup schedule: daily at hour:minute UTC or hourly at minute, keeping the newest keep scheduled backups", request: "BackupSchedule", response: "BackupSchedule", status: "200"},
	"GET /api/v1/backups/{id}":                                     {summary: "One backup", response: "Backup", status: "200"},
	"GET /api/v1/backups/{id}/download":                            {summary: "Stream a good backup's dump (decrypted) as an attachment; its checksum is checked on the way, and a mismatch cuts the download (a plain one also carries X-Myt-Sha256 and Content-Length)", response: "", status: "200"},
	"DELETE /api/v1/backups/{id}":                                  {summary: "Delete a backup and its file (409 while a job writes or restores it)", status: "204"},
	"GET /api/v1/jobs/{id}/log":                                    {summary: "Log chunks after ?after=SEQ; ?wait=30s holds the request until there is more or the job ends", response: "JobLog", status: "200"},
	"GET /api/v1/users":                                            {summary: "List users (admins)", response: "User", list: true, status: "200"},
	"POST /api/v1/users":                                           {summary: "Create a user (admins)", request: "UserRequest", response: "User", status: "201"},
	"GET /api/v1/users/{id}":                                       {summary: "A user (admins, or yourself)", response: "User", status: "200"},
	"PATCH /api/v1/users/{id}":                                     {summary: "Make admin or disable a user (admins)", request: "UserPatch", response: "User", status: "200"},
	"POST /api/v1/users/{id}/password":                             {summary: "Reset a user's password (admins); their saved credentials become unreadable", request: "ResetRequest", status: "204"},
	"GET /api/v1/settings":                                         {summary: "Instance settings", response: "Settings", status: "200"},
	"PUT /api/v1/settings":                                         {summary: "Change instance settings (admins)", request: "Settings", response: "Settings", status: "200"},
	"GET /api/v1/invites":                                          {summary: "List invitations (admins)", response: "Invite", list: true, status: "200"},
	"POST /api/v1/invites":                                         {summary: "Create a one-time sign-up invitation; the code is returned once (admins)", request: "InviteRequest", response: "Invite", status: "201"},
	"DELETE /api/v1/invites/{id}":                                  {summary: "Delete an invitation (admins)", status: "204"},
}

type obj = map[string]any

func str() obj               { return obj{"type": "string"} }
func boolean() obj           { return obj{"type": "boolean"} }
func integer() obj           { return obj{"type": "integer", "format": "int64"} }
func number() obj            { return obj{"type": "number", "format": "double"} }
func ref(name string) obj    { return obj{"$ref": "#/components/schemas/" + name} }
func arr(items obj) obj      { return obj{"type": "array", "items": items} }
func strMap() obj            { return obj{"type": "object", "additionalProperties": str()} }
func dateTime() obj          { return obj{"type": "string", "format": "date-time"} }
func enum(vals []string) obj { return obj{"type": "string", "enum": vals} }
func object(props obj, required ...string) obj {
	o := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func schemas() obj {
	return obj{
		"Object": obj{"type": "object"},
		"Error": object(obj{"error": object(obj{
			"code":    enum(myt.ErrorCodes()),
			"message": str(),
			"fields":  arr(object(obj{"field": str(), "message": str()})),
		}, "code", "message")}, "error"),
		"Status":        object(obj{"version": str(), "needsSetup": boolean()}),
		"Login":         object(obj{"username": str(), "password": obj{"type": "string", "format": "password"}, "tokenName": str()}, "username", "password"),
		"Token":         object(obj{"token": str(), "session": ref("Session"), "user": ref("User")}),
		"TokenRequest":  object(obj{"name": str()}, "name"),
		"Password":      object(obj{"old": str(), "new": str()}, "old", "new"),
		"Session":       object(obj{"id": integer(), "kind": enum([]string{myt.SessionWeb, myt.SessionAPI}), "name": str(), "created": dateTime(), "expires": dateTime(), "lastUsed": dateTime()}),
		"User":          object(obj{"id": integer(), "username": str(), "admin": boolean(), "disabled": boolean(), "created": dateTime(), "credentialsLost": boolean()}),
		"UserRequest":   object(obj{"username": str(), "password": str(), "admin": boolean()}, "username", "password"),
		"UserPatch":     object(obj{"admin": boolean(), "disabled": boolean()}),
		"ResetRequest":  object(obj{"password": str()}, "password"),
		"Settings":      object(obj{"openSignup": boolean()}),
		"Invite":        object(obj{"id": integer(), "code": str(), "created": dateTime(), "expires": dateTime(), "used": boolean()}),
		"InviteRequest": object(obj{"ttl": obj{"type": "string", "example": "72h"}}),
		"Credential": object(obj{"id": integer(), "name": str(), "kind": enum(credential.Names()),
			"public": strMap(), "masked": strMap(), "created": dateTime(), "locked": boolean()}),
		"CredentialRequest": object(obj{"name": str(), "kind": str(), "public": strMap(), "secret": strMap()}, "name", "kind"),
		"Platform": object(obj{"id": integer(), "name": str(), "status": enum([]string{myt.StatusDesigned, myt.StatusDeploying, myt.StatusRunning, myt.StatusFailed, myt.StatusDestroying, myt.StatusDestroyed}),
			"design": ref("Design"), "created": dateTime(), "updated": dateTime(), "revision": integer(),
			"deployedRevision": integer(), "endpoints": ref("Endpoints")}),
		"Validated": object(obj{"design": ref("Design")}),
		"JobRequest": object(obj{"kind": enum(myt.JobKinds), "deleteData": boolean(), "confirm": str(), "autoApprove": boolean(),
			"finalBackup": boolean(), "backup": integer(), "encrypt": boolean()}, "kind"),
		"Backup": object(obj{"id": integer(), "platformId": integer(), "platform": str(), "jobId": integer(), "kind": str(),
			"state": enum([]string{myt.BackupRunning, myt.BackupOK, myt.BackupFailed}), "size": integer(), "sha256": str(), "encrypted": boolean(),
			"format": str(), "started": dateTime(), "duration": obj{"type": "integer", "description": "nanoseconds"}, "reason": str(), "error": str()}),
		"BackupRequest":  object(obj{"encrypt": boolean()}),
		"RestoreRequest": object(obj{"backup": integer(), "confirm": str()}, "backup", "confirm"),
		"BackupSchedule": object(obj{"platformId": integer(), "enabled": boolean(), "hourly": boolean(), "hour": integer(), "minute": integer(), "keep": integer(), "unavailable": str()}),
		"Approval":       object(obj{"confirm": str()}),
		"Device": object(obj{"id": integer(), "name": str(), "description": str(), "created": dateTime(), "revoked": dateTime(),
			"lastSeen": dateTime(), "connected": boolean(), "messages": integer()}),
		"DeviceNew":    object(obj{"name": str(), "description": str()}, "name"),
		"DeviceSecret": object(obj{"device": ref("Device"), "password": str()}),
		"DeviceImport": object(obj{"csv": str()}, "csv"),
		"JobStep": object(obj{"name": str(), "state": enum([]string{myt.StepPending, myt.StepRunning, myt.StepSucceeded, myt.StepFailed, myt.StepSkipped}),
			"detail": str(), "done": integer(), "total": integer(), "started": dateTime(), "finished": dateTime()}),
		"Plan": object(obj{"add": integer(), "change": integer(), "destroy": integer(), "replacesHost": boolean(), "destroysData": boolean(),
			"changes": arr(object(obj{"address": str(), "type": str(), "action": str(), "host": boolean(), "data": boolean()}))}),
		"Job": object(obj{"id": integer(), "platformId": integer(), "platform": str(), "kind": enum(myt.JobKinds), "state": enum(myt.JobStates),
			"revision": integer(), "startedBy": str(), "created": dateTime(), "started": dateTime(), "finished": dateTime(),
			"error": str(), "summary": str(), "steps": arr(ref("JobStep")), "plan": ref("Plan"), "deleteData": boolean()}),
		"JobLog":          object(obj{"chunks": arr(object(obj{"seq": integer(), "text": str()})), "done": boolean()}),
		"RevealedSecret":  object(obj{"name": str(), "value": str()}),
		"CodeRequest":     object(obj{"code": str()}, "code"),
		"CodeTestRequest": object(obj{"code": str(), "samples": str(), "deadLetters": integer()}, "code"),
		"CodeTest": object(obj{"failed": integer(), "results": arr(object(obj{"line": integer(), "records": arr(obj{"type": "object"}),
			"dropped": boolean(), "reason": str(), "error": str()}))}),
		"DeadLetters": object(obj{"total": integer(), "items": arr(object(obj{"id": str(), "reason": str(), "detail": str(), "routingKey": str(),
			"device": str(), "deadAt": dateTime(), "body": str(), "size": integer(), "truncated": boolean(), "encoding": str(), "replays": integer()}))}),
		"DeadLetterReplay": object(obj{"replayed": integer(), "remaining": integer()}),
		"Purged":           object(obj{"purged": integer()}),
		"MoveRequest":      object(obj{"destination": integer(), "from": str(), "to": str(), "device": str()}, "destination"),
		"Move":             object(obj{"from": str(), "to": str(), "exported": integer(), "imported": integer(), "rejected": integer(), "reasons": arr(str())}),
		"Health": object(obj{"platformId": integer(), "monitored": boolean(), "error": str(), "time": dateTime(),
			"components": arr(object(obj{"name": str(), "up": boolean(), "reason": str()})), "polls": integer(), "skipped": integer()}),
		"MetricSeries": object(obj{"metric": str(), "kind": enum([]string{"gauge", "counter"}), "resolution": enum([]string{"raw", "5m", "1h"}),
			"points": arr(object(obj{"t": dateTime(), "v": number(), "min": number(), "max": number()}))}),
		"CodeVersion": object(obj{"version": integer(), "code": str(), "author": str(), "created": dateTime(), "jobId": integer(),
			"jobKind": enum(myt.JobKinds), "running": boolean(), "sameAs": integer()}),
		"Endpoints": object(obj{"address": str(), "mqtt": str(), "mqtts": str(), "amqp": str(), "amqps": str(), "grafana": str(),
			"deviceUser": str(), "topicPrefix": str()}),
		"AlertChannel": object(obj{"id": integer(), "platformId": integer(), "name": str(), "kind": enum([]string{string(alert.ChannelWebhook), string(alert.ChannelEmail)}),
			"signed": boolean(), "host": str(), "to": arr(str()), "created": dateTime()}),
		"AlertChannelRequest": object(obj{"name": str(), "kind": enum([]string{string(alert.ChannelWebhook), string(alert.ChannelEmail)}),
			"url": obj{"type": "string", "format": "uri"}, "secret": obj{"type": "string", "format": "password"}, "to": arr(obj{"type": "string", "format": "email"})}, "name"),
		"AlertChannelPatch": object(obj{"name": str(), "url": obj{"type": "string", "format": "uri"}, "secret": obj{"type": "string", "format": "password"}, "to": arr(obj{"type": "string", "format": "email"})}),
		"AlertTest":         object(obj{"channel": ref("AlertChannel"), "delivered": boolean(), "error": str()}),
		"AlertRule": object(obj{"id": integer(), "name": str(), "kind": enum(alertKinds()), "component": str(), "threshold": obj{"type": "number"},
			"for": obj{"type": "string", "example": "2m0s"}, "clearFor": obj{"type": "string", "example": "1m0s"}, "enabled": boolean(),
			"state": enum([]string{string(alert.StateOK), string(alert.StatePending), string(alert.StateFiring)}), "since": dateTime()}),
		"AlertRulePatch": object(obj{"enabled": boolean(), "threshold": obj{"type": "number", "minimum": 0}, "for": obj{"type": "string", "example": "5m"}, "clearFor": obj{"type": "string", "example": "1m"}}),
		"AlertEvent": object(obj{"id": integer(), "platformId": integer(), "ruleId": integer(), "rule": str(), "kind": enum(alertKinds()),
			"state": enum([]string{alert.Fired, alert.Resolved}), "value": obj{"type": "number"}, "threshold": obj{"type": "number"},
			"since": dateTime(), "at": dateTime(), "detail": str(),
			"deliveries": arr(object(obj{"channelId": integer(), "status": enum([]string{alert.Delivered, alert.Failed}), "attempts": integer(), "error": str(), "at": dateTime()}))}),
		"AlertEvents": object(obj{"events": arr(ref("AlertEvent")), "next": integer()}, "events"),
		"Design": object(obj{
			"apiVersion": enum([]string{myt.DesignAPIVersion}),
			"kind":       enum([]string{myt.DesignKind}),
			"metadata":   object(obj{"name": obj{"type": "string", "pattern": "^[a-z][a-z0-9-]{0,38}[a-z0-9]$"}, "description": str()}, "name"),
			"spec": object(obj{
				"target": object(obj{"provider": enum(myt.Providers), "credentials": str(), "region": str(), "zone": str(), "size": enum(myt.Sizes),
					"instanceType": str(), "image": str(), "externalNetwork": str(), "network": str(), "adminCIDRs": arr(str()), "deviceCIDRs": arr(str()), "dataVolumeGB": integer(), "dataDevice": str(), "dockerRepository": str()}, "provider"),
				"database":   object(obj{"kind": enum(myt.DatabaseKinds), "fields": obj{"type": "object", "additionalProperties": enum(myt.FieldTypes)}, "retentionDays": integer()}, "kind"),
				"broker":     object(obj{"mqtt": boolean(), "amqp": boolean(), "tls": boolean(), "plaintext": boolean()}),
				"processing": object(obj{"handler": str(), "timeoutSeconds": integer(), "workers": integer()}),
			}, "target", "database"),
		}, "apiVersion", "kind", "metadata", "spec"),
	}
}

// OpenAPI returns the OpenAPI 3.1 document of the API, built from the route
// table so that it cannot drift from what is served.
func OpenAPI() map[string]any {
	paths := obj{}
	for _, rt := range routeTable() {
		key := rt.method + " " + rt.path
		d := docs[key]
		op := obj{"summary": d.summary, "operationId": operationID(rt.method, rt.path)}
		if !rt.public {
			op["security"] = []obj{{"bearer": []string{}}}
		}
		var params []obj
		for _, part := range strings.Split(rt.path, "/") {
			name, ok := strings.CutPrefix(part, "{")
			if !ok {
				continue
			}
			name = strings.TrimSuffix(name, "}")
			schema := integer()
			if name == "name" {
				schema = str()
			}
			params = append(params, obj{"name": name, "in": "path", "required": true, "schema": schema})
		}
		if params != nil {
			op["parameters"] = params
		}
		if d.request != "" {
			content := obj{"application/json": obj{"schema": ref(d.request)}}
			if d.request == "Design" {
				content["application/yaml"] = obj{"schema": ref(d.request)}
			}
			op["requestBody"] = obj{"required": true, "content": content}
		}
		responses := obj{}
		if d.response == "" {
			responses[d.status] = obj{"description": "Done"}
		} else {
			schema := ref(d.response)
			if d.list {
				schema = arr(schema)
			}
			responses[d.status] = obj{"description": "OK", "content": obj{"application/json": obj{"schema": schema}}}
		}
		responses["default"] = obj{"description": "Error", "content": obj{"application/json": obj{"schema": ref("Error")}}}
		op["responses"] = responses
		item, _ := paths[rt.path].(obj)
		if item == nil {
			item = obj{}
			paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{"title": "MyT API", "version": myt.Version,
			"description": "Design, deploy and operate your own IoT platform. Authenticate with a personal API token: Authorization: Bearer <token>."},
		"paths": paths,
		"components": obj{
			"schemas":         schemas(),
			"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer"}},
		},
	}
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, part := range strings.Split(strings.TrimPrefix(path, "/api/v1/"), "/") {
		part = strings.Trim(part, "{}")
		part = strings.NewReplacer(".", "", "-", "").Replace(part)
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, OpenAPI())
}
