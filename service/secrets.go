package service

import (
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/engram-dev/engram/api"
	"github.com/engram-dev/engram/events"
	"github.com/engram-dev/engram/fault"
	"github.com/engram-dev/engram/projections"
)

// Agents' tool environment variables (Letta's secrets): given on agent
// create and update, sealed before they are appended
// (events.AgentSecretsSet; the log holds no value in clear), shown masked,
// opened only to call that agent's own Python tools, which get them as
// environment variables. They are never logged.

// SecretBox seals and opens secret values for a purpose (package secrets).
type SecretBox interface {
	// Seal encrypts plain for the purpose ad.
	Seal(ad, plain string) (string, error)
	// Open decrypts what Seal made for the same ad, or fails.
	Open(ad, sealed string) (string, error)
}

// Limits on an agent's secrets.
const (
	maxSecrets     = 100
	maxSecretBytes = 16 << 10
)

// secretName is an environment variable's name.
var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// reservedSecrets are the variables the sandbox sets itself.
var reservedSecrets = []string{"PATH", "HOME", "LC_CTYPE"}

// secretPurpose binds a sealed value to its agent and its name.
func secretPurpose(agentID, name string) string { return agentID + "/" + name }

// mergeSecrets is the variables a request sets: older, overridden by newer
// where both name one; nil when neither is set.
func mergeSecrets(older, newer map[string]string) map[string]string {
	if older == nil && newer == nil {
		return nil
	}
	out := map[string]string{}
	maps.Copy(out, older)
	maps.Copy(out, newer)
	return out
}

// sealSecrets validates an agent's new variables and seals each.
func (s *Service) sealSecrets(agentID string, vars map[string]string) (*events.AgentSecretsSet, error) {
	if len(vars) > maxSecrets {
		return nil, invalid("an agent has at most %d secrets, not %d", maxSecrets, len(vars))
	}
	if len(vars) > 0 && s.cfg.Secrets == nil {
		return nil, invalid("this server keeps no secrets (it has no key to seal them with)")
	}
	e := &events.AgentSecretsSet{Secrets: map[string]string{}}
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		v := vars[name]
		if !secretName.MatchString(name) || slices.Contains(reservedSecrets, name) {
			return nil, invalid("secret name %q must be an environment variable's name (letters, digits, _; not %v)", name, reservedSecrets)
		}
		if len(v) > maxSecretBytes {
			return nil, invalid("secret %s is %d bytes; the limit is %d", name, len(v), maxSecretBytes)
		}
		for _, c := range []byte(v) {
			if c == 0 {
				return nil, invalid("secret %s holds a NUL byte", name)
			}
		}
		sealed, err := s.cfg.Secrets.Seal(secretPurpose(agentID, name), v)
		if err != nil {
			return nil, fault.Wrap(fault.Internal, err, "cannot seal a secret")
		}
		e.Secrets[name] = sealed
	}
	return e, nil
}

// secretsView lists an agent's variables, values masked, by name.
func secretsView(a *projections.Agent) []api.AgentEnvironmentVariable {
	if len(a.Secrets) == 0 {
		return nil
	}
	out := make([]api.AgentEnvironmentVariable, 0, len(a.Secrets))
	for _, name := range slices.Sorted(maps.Keys(a.Secrets)) {
		out = append(out, api.AgentEnvironmentVariable{
			ID:  events.DerivedID("agent-env", secretPurpose(string(a.ID), name)),
			Key: name, Value: api.MaskedSecret, AgentID: string(a.ID),
		})
	}
	return out
}

// AgentSecrets opens an agent's variables for one of its own tool calls;
// nil when it has none.
func (s *Service) AgentSecrets(agentID string) (map[string]string, error) {
	var sealed map[string]string
	s.read(func(st *projections.State) {
		if a := st.Agents[events.AgentID(agentID)]; a != nil {
			sealed = a.Secrets
		}
	})
	return s.openSecrets(agentID, sealed)
}

// openSecrets opens an agent's variables.
func (s *Service) openSecrets(agentID string, sealed map[string]string) (map[string]string, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	if s.cfg.Secrets == nil {
		return nil, fmt.Errorf("this server has no key to open the agent's secrets with")
	}
	out := make(map[string]string, len(sealed))
	for name, v := range sealed {
		plain, err := s.cfg.Secrets.Open(secretPurpose(agentID, name), v)
		if err != nil {
			return nil, fmt.Errorf("the agent's secret %s does not open with this server's key (a cluster's members must share secrets.key)", name)
		}
		out[name] = plain
	}
	return out, nil
}
