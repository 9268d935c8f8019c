package identity_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fixedClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newService(t *testing.T, db *store.DB) (*identity.Service, *fixedClock) {
	t.Helper()
	clk := &fixedClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	acc := access.NewStore(db, clk.Now)
	cfg := identity.DefaultConfig()
	cfg.Argon2 = identity.MinimumArgon2
	cfg.Now = clk.Now
	s, err := identity.New(db, acc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.EnsureAdmin(context.Background(), "admin-password-for-tests"); err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func eachService(t *testing.T, f func(t *testing.T, s *identity.Service, clk *fixedClock)) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, clk := newService(t, db)
		f(t, s, clk)
	}, identity.Migrations, access.Migrations)
}

func TestBackoff(t *testing.T) {
	th := identity.Throttle{BaseDelay: time.Second, MaxDelay: time.Minute}
	tests := []struct {
		n, free int
		want    time.Duration
	}{
		{1, 3, 0}, {3, 3, 0}, {4, 3, time.Second}, {5, 3, 2 * time.Second}, {6, 3, 4 * time.Second},
		{9, 3, 32 * time.Second}, {10, 3, time.Minute}, {1000, 3, time.Minute}, {1, 0, time.Second},
	}
	for _, tt := range tests {
		if got := th.Backoff(tt.n, tt.free); got != tt.want {
			t.Errorf("Backoff(%d, %d) = %v, want %v", tt.n, tt.free, got, tt.want)
		}
	}
}

func TestEnsureAdminIdempotent(t *testing.T) {
	eachService(t, func(t *testing.T, s *identity.Service, _ *fixedClock) {
		created, gen, err := s.EnsureAdmin(context.Background(), "")
		if err != nil || created || gen != "" {
			t.Fatalf("second EnsureAdmin = %v %q %v, want nothing created", created, gen, err)
		}
		u, err := s.GetUser(context.Background(), "admin")
		if err != nil || len(u.Roles) != 1 || u.Roles[0].Role != "admin" {
			t.Fatalf("admin = %+v, %v", u, err)
		}
		// The last admin cannot be deleted.
		if err := s.DeleteUser(context.Background(), "admin"); !errors.Is(err, identity.ErrInvalid) {
			t.Errorf("delete last admin: %v, want ErrInvalid", err)
		}
	})
}

func TestGeneratedAdminPassword(t *testing.T) {
	db := storetest.SQLite(t, identity.Migrations, access.Migrations)
	cfg := identity.DefaultConfig()
	cfg.Argon2 = identity.MinimumArgon2
	s, err := identity.New(db, access.NewStore(db, time.Now), cfg)
	if err != nil {
		t.Fatal(err)
	}
	created, pw, err := s.EnsureAdmin(context.Background(), "")
	if err != nil || !created || len(pw) < 24 {
		t.Fatalf("EnsureAdmin = %v %q %v", created, pw, err)
	}
	if _, err := s.Login(context.Background(), identity.Login{Username: "admin", Password: pw, Source: "127.0.0.1:1"}); err != nil {
		t.Errorf("login with the generated password: %v", err)
	}
}

func TestCreateUserValidation(t *testing.T) {
	eachService(t, func(t *testing.T, s *identity.Service, _ *fixedClock) {
		ctx := context.Background()
		tests := []struct {
			name string
			nu   identity.NewUser
			want error
		}{
			{"short password", identity.NewUser{Username: "a1", Password: "short"}, identity.ErrInvalid},
			{"common password", identity.NewUser{Username: "a2", Password: "1qaz2wsx3edc"}, identity.ErrWeakPassword},
			{"password equals username", identity.NewUser{Username: "averylongname", Password: "averylongname"}, identity.ErrInvalid},
			{"bad username", identity.NewUser{Username: "Bad Name", Password: "a-fine-long-password"}, identity.ErrInvalid},
			{"unknown role", identity.NewUser{Username: "a3", Password: "a-fine-long-password", Roles: []access.RoleBinding{{Role: "nope"}}}, access.ErrNotFound},
			{"bad tag", identity.NewUser{Username: "a4", Password: "a-fine-long-password", Tags: map[string]string{"te am": "x"}}, identity.ErrInvalid},
			{"duplicate", identity.NewUser{Username: "admin", Password: "a-fine-long-password"}, identity.ErrExists},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.CreateUser(ctx, tt.nu)
				if !errors.Is(err, tt.want) {
					t.Fatalf("CreateUser: %v, want %v", err, tt.want)
				}
			})
		}
		// Nothing half-written: the user with an unknown role does not exist.
		if _, err := s.GetUser(ctx, "a3"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("user with failed role binding exists: %v", err)
		}
	})
}

// TestTOTPConcurrentReplay sends the same valid code in parallel logins:
// exactly one may succeed, on both engines.
func TestTOTPConcurrentReplay(t *testing.T) {
	eachService(t, func(t *testing.T, s *identity.Service, clk *fixedClock) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, identity.NewUser{Username: "tina", Password: "tina-password-long-1"})
		if err != nil {
			t.Fatal(err)
		}
		en, err := s.BeginTOTP(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		secret, _ := identity.DecodeTOTPSecret(en.Secret)
		if _, err := s.ConfirmTOTP(ctx, u.ID, identity.TOTPCode(secret, clk.Now(), identity.DefaultTOTP)); err != nil {
			t.Fatal(err)
		}
		// The confirming code is spent; a second confirm-time code is refused.
		if _, err := s.Login(ctx, identity.Login{Username: "tina", Password: "tina-password-long-1", TOTP: identity.TOTPCode(secret, clk.Now(), identity.DefaultTOTP), Source: "10.0.0.1:1"}); !errors.Is(err, identity.ErrMFAFailed) {
			t.Errorf("enrolment code reused: %v", err)
		}
		clk.Add(30 * time.Second)
		code := identity.TOTPCode(secret, clk.Now(), identity.DefaultTOTP)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.Login(ctx, identity.Login{Username: "tina", Password: "tina-password-long-1", TOTP: code, Source: "10.0.0.2:1"})
				if err == nil && res.Token != "" {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Errorf("%d concurrent logins with one code succeeded, want exactly 1", ok)
		}
	})
}

func TestSourceThrottleGroupsIPv6(t *testing.T) {
	eachService(t, func(t *testing.T, s *identity.Service, clk *fixedClock) {
		ctx := context.Background()
		// A sprayer rotating addresses inside one /64 and rotating usernames
		// hits the per-source limit (free attempts x source factor = 12).
		var last error
		for i := 0; i < 14; i++ {
			src := "[2001:db8:1:2::" + strings.Repeat("a", 1+i%3) + "]:443"
			_, last = s.Login(ctx, identity.Login{Username: "ghost" + string(rune('a'+i)), Password: "x", Source: src})
		}
		var te *identity.ThrottledError
		if !errors.As(last, &te) || !strings.HasPrefix(te.Key, "src:2001:db8:1:2::/64") {
			t.Fatalf("last error = %v, want throttling of the /64", last)
		}
		// Another /64 is unaffected.
		if _, err := s.Login(ctx, identity.Login{Username: "admin", Password: "admin-password-for-tests", Source: "[2001:db8:1:3::1]:443"}); err != nil {
			t.Errorf("other /64: %v", err)
		}
	})
}

func TestDisableRevokesSessionsAndTokens(t *testing.T) {
	eachService(t, func(t *testing.T, s *identity.Service, _ *fixedClock) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, identity.NewUser{Username: "uma", Password: "uma-password-long-1", Roles: []access.RoleBinding{{Role: "operator"}}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Login(ctx, identity.Login{Username: "uma", Password: "uma-password-long-1", Source: "127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := s.CreateToken(ctx, u.ID, "t", nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		disabled := true
		if _, err := s.UpdateUser(ctx, "uma", identity.UserUpdate{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		for _, bearer := range []string{res.Token, tok} {
			if _, err := s.Authenticate(ctx, bearer); !errors.Is(err, identity.ErrUnauthenticated) {
				t.Errorf("credential of a disabled user: %v", err)
			}
		}
		if _, err := s.Login(ctx, identity.Login{Username: "uma", Password: "uma-password-long-1", Source: "127.0.0.1:1"}); !errors.Is(err, identity.ErrDisabled) {
			t.Errorf("login of a disabled user: %v", err)
		}
	})
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	eachService(t, func(t *testing.T, s *identity.Service, _ *fixedClock) {
		ctx := context.Background()
		res, err := s.Login(ctx, identity.Login{Username: "admin", Password: "admin-password-for-tests", Source: "127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ChangeOwnPassword(ctx, res.User.ID, "wrong", "new-admin-password-1", "127.0.0.1:1"); !errors.Is(err, identity.ErrBadCredentials) {
			t.Errorf("change with wrong current password: %v", err)
		}
		if err := s.ChangeOwnPassword(ctx, res.User.ID, "admin-password-for-tests", "new-admin-password-1", "127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, res.Token); err == nil {
			t.Errorf("session survived a password change")
		}
	})
}
