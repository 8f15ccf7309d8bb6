--------------------------------------------------------------------------------------------------
-- Job states (core/src/state.rs).
--------------------------------------------------------------------------------------------------

-- checked: zrq_core::state::State::ALL
local STATES = { 'waiting', 'scheduled', 'pending', 'active', 'retrying', 'completed', 'dead', 'cancelled' }
local IS_STATE = { waiting = true, scheduled = true, pending = true, active = true, retrying = true,
    completed = true, dead = true, cancelled = true }
local IS_FINAL = { completed = true, dead = true, cancelled = true }
