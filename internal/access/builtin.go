package access

// Names of the built-in roles.
const (
	RoleAdmin    = "admin"
	RoleAuditor  = "auditor"
	RoleOperator = "operator"
	RoleBilling  = "billing"
)

// BuiltinRoles returns the built-in roles and their fixed grants, as
// EnsureBuiltins stores them. Their grants cannot be changed; an
// administrator who wants a variant creates a new role.
func BuiltinRoles() []Role {
	return []Role{
		{
			Name:        RoleAdmin,
			Description: "Everything, on every module and resource.",
			Grants:      []Grant{{Effect: EffectAllow, Module: ModuleAll, Level: LevelWrite}},
		},
		{
			Name:        RoleAuditor,
			Description: "Read everything, including the audit log; change nothing.",
			Grants:      []Grant{{Effect: EffectAllow, Module: ModuleAll, Level: LevelRead}},
		},
		{
			Name:        RoleOperator,
			Description: "Read and operate (start, stop, run now, acknowledge) everywhere; create, change or delete nothing.",
			Grants:      []Grant{{Effect: EffectAllow, Module: ModuleAll, Level: LevelOperate}},
		},
		{
			Name:        RoleBilling,
			Description: "Read and change billing only.",
			Grants:      []Grant{{Effect: EffectAllow, Module: ModuleBilling, Level: LevelWrite}},
		},
	}
}

// IsBuiltin reports whether name is a built-in role's name.
func IsBuiltin(name string) bool {
	switch name {
	case RoleAdmin, RoleAuditor, RoleOperator, RoleBilling:
		return true
	}
	return false
}
