package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/identity"
)

// checkResource applies the caller's grants to one tagged resource.
func (s *Server) checkResource(c *Call, m access.Module, l access.Level, tags map[string]string) error {
	return c.Principal.Authorize(s.now(), access.Request{Module: m, Level: l, Tags: tags, Resource: true})
}

type userCreate struct {
	Username    string               `json:"username"`
	Password    string               `json:"password"`
	DisplayName string               `json:"display_name,omitempty"`
	Email       string               `json:"email,omitempty"`
	Tags        map[string]string    `json:"tags,omitempty"`
	Roles       []access.RoleBinding `json:"roles,omitempty"`
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, c *Call) error {
	after, limit, err := s.page(r)
	if err != nil {
		return err
	}
	out := List[identity.User]{Items: []identity.User{}}
	// Read pages until the caller's scope yields a full page, within a
	// bound; a short page then carries a cursor to continue from.
	for range 20 {
		us, err := s.d.Identity.ListUsers(r.Context(), after, limit)
		if err != nil {
			return err
		}
		for _, u := range us {
			after = u.Username
			if s.checkResource(c, access.ModuleAccess, access.LevelRead, u.Tags) == nil {
				out.Items = append(out.Items, u)
				if len(out.Items) == limit {
					out.Next = u.Username
					writeJSON(w, http.StatusOK, out)
					return nil
				}
			}
		}
		if len(us) < limit {
			writeJSON(w, http.StatusOK, out)
			return nil
		}
	}
	out.Next = after
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req userCreate
	if err := decode(r, &req); err != nil {
		return err
	}
	c.Resource = "user/" + req.Username
	if err := s.checkResource(c, access.ModuleAccess, access.LevelWrite, req.Tags); err != nil {
		return err
	}
	if len(req.Roles) > 0 {
		if err := s.canBindRoles(c); err != nil {
			return err
		}
	}
	u, err := s.d.Identity.CreateUser(r.Context(), identity.NewUser{Username: req.Username, Password: req.Password,
		DisplayName: req.DisplayName, Email: req.Email, Tags: req.Tags, Roles: req.Roles})
	if err != nil {
		return err
	}
	c.Details = map[string]any{"roles": req.Roles, "tags": req.Tags}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// canBindRoles: giving a user roles hands out every grant of those roles,
// so it takes access write on all resources. A tag-scoped access manager
// manages the accounts of their team, not what those accounts may do;
// otherwise they could bind "admin" to an account they create.
func (s *Server) canBindRoles(c *Call) error {
	return c.Principal.Authorize(s.now(), access.Request{Module: access.ModuleAccess, Level: access.LevelWrite, Global: true})
}

// loadUser fetches {name} and checks the caller's scope on it. A user
// outside the caller's read scope is reported as not found, so scoped
// callers cannot probe which account names exist.
func (s *Server) loadUser(r *http.Request, c *Call, l access.Level) (identity.User, error) {
	name := r.PathValue("name")
	c.Resource = "user/" + name
	u, err := s.d.Identity.GetUser(r.Context(), name)
	if err != nil {
		return u, err
	}
	if s.checkResource(c, access.ModuleAccess, access.LevelRead, u.Tags) != nil {
		return u, &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("user %q not found", name)}
	}
	return u, s.checkResource(c, access.ModuleAccess, l, u.Tags)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, c *Call) error {
	u, err := s.loadUser(r, c, access.LevelRead)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

type userPatch struct {
	DisplayName *string               `json:"display_name,omitempty"`
	Email       *string               `json:"email,omitempty"`
	Disabled    *bool                 `json:"disabled,omitempty"`
	Tags        *map[string]string    `json:"tags,omitempty"`
	Roles       *[]access.RoleBinding `json:"roles,omitempty"`
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req userPatch
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.loadUser(r, c, access.LevelWrite)
	if err != nil {
		return err
	}
	if req.Tags != nil {
		if err := s.checkResource(c, access.ModuleAccess, access.LevelWrite, *req.Tags); err != nil {
			return err
		}
	}
	if req.Roles != nil {
		if err := s.canBindRoles(c); err != nil {
			return err
		}
	}
	if req.Disabled != nil && *req.Disabled && u.ID == c.Auth.User.ID {
		return badRequest("disabled", "you cannot disable your own account")
	}
	details := map[string]any{}
	if req.Roles != nil {
		details["roles"] = *req.Roles
	}
	if req.Disabled != nil {
		details["disabled"] = *req.Disabled
	}
	if req.Tags != nil {
		details["tags"] = *req.Tags
	}
	c.Details = details
	out, err := s.d.Identity.UpdateUser(r.Context(), u.Username, identity.UserUpdate{DisplayName: req.DisplayName, Email: req.Email, Disabled: req.Disabled, Tags: req.Tags, Roles: req.Roles})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, c *Call) error {
	u, err := s.loadUser(r, c, access.LevelWrite)
	if err != nil {
		return err
	}
	if u.ID == c.Auth.User.ID {
		return badRequest("name", "you cannot delete your own account")
	}
	if err := s.d.Identity.DeleteUser(r.Context(), u.Username); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type passwordSet struct {
	Password string `json:"password"`
}

func (s *Server) setPassword(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req passwordSet
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.loadUser(r, c, access.LevelWrite)
	if err != nil {
		return err
	}
	if err := s.d.Identity.SetPassword(r.Context(), u.Username, req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request, c *Call) error {
	u, err := s.loadUser(r, c, access.LevelOperate)
	if err != nil {
		return err
	}
	if err := s.d.Identity.Unlock(r.Context(), u.Username); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type roleCreate struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Require2FA  bool           `json:"require_2fa,omitempty"`
	Grants      []access.Grant `json:"grants,omitempty"`
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, c *Call) error {
	roles, err := s.d.Access.ListRoles(r.Context())
	if err != nil {
		return err
	}
	if roles == nil {
		roles = []access.Role{}
	}
	writeJSON(w, http.StatusOK, List[access.Role]{Items: roles})
	return nil
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req roleCreate
	if err := decode(r, &req); err != nil {
		return err
	}
	c.Resource = "role/" + req.Name
	c.Details = map[string]any{"grants": req.Grants, "require_2fa": req.Require2FA}
	role, err := s.d.Access.CreateRole(r.Context(), access.Role{Name: req.Name, Description: req.Description, Require2FA: req.Require2FA, Grants: req.Grants})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, role)
	return nil
}

func (s *Server) getRole(w http.ResponseWriter, r *http.Request, c *Call) error {
	role, err := s.d.Access.GetRole(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, role)
	return nil
}

type rolePatch struct {
	Description *string `json:"description,omitempty"`
	Require2FA  *bool   `json:"require_2fa,omitempty"`
}

func (s *Server) updateRole(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req rolePatch
	if err := decode(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	c.Resource = "role/" + name
	c.Details = map[string]any{"require_2fa": req.Require2FA, "description": req.Description}
	role, err := s.d.Access.UpdateRole(r.Context(), name, req.Description, req.Require2FA)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, role)
	return nil
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request, c *Call) error {
	name := r.PathValue("name")
	c.Resource = "role/" + name
	if err := s.d.Access.DeleteRole(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type grantRequest struct {
	Module    access.Module   `json:"module"`
	Level     access.Level    `json:"level"`
	Effect    access.Effect   `json:"effect,omitempty"`
	Scope     access.Selector `json:"scope,omitzero"`
	ExpiresAt time.Time       `json:"expires_at,omitzero"`
}

func (s *Server) addGrant(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req grantRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	c.Resource = "role/" + name
	g := access.Grant{Module: req.Module, Level: req.Level, Effect: req.Effect, Scope: req.Scope, ExpiresAt: req.ExpiresAt}
	out, err := s.d.Access.AddGrant(r.Context(), name, g)
	if err != nil {
		return err
	}
	c.Details = map[string]any{"grant": out}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) removeGrant(w http.ResponseWriter, r *http.Request, c *Call) error {
	name := r.PathValue("name")
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return badRequest("id", "grant id must be an integer")
	}
	c.Resource = "role/" + name + "/grant/" + r.PathValue("id")
	if err := s.d.Access.RemoveGrant(r.Context(), name, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, c *Call) error {
	ts, err := s.d.Identity.ListTokens(r.Context(), 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[identity.APIToken]{Items: ts})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, c *Call) error {
	id := r.PathValue("id")
	c.Resource = "token/" + id
	if err := s.d.Identity.RevokeToken(r.Context(), id, 0); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type authSettings struct {
	Require2FA bool `json:"require_2fa"`
}

func (s *Server) getAuthSettings(w http.ResponseWriter, r *http.Request, c *Call) error {
	st, err := s.d.Identity.Settings(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) putAuthSettings(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req authSettings
	if err := decode(r, &req); err != nil {
		return err
	}
	c.Resource = "settings/auth"
	c.Details = map[string]any{"require_2fa": req.Require2FA}
	if err := s.d.Identity.SetRequire2FA(r.Context(), req.Require2FA); err != nil {
		return err
	}
	return s.getAuthSettings(w, r, c)
}
