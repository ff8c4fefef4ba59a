-- Flux for Neovim: send code to a playing `flux play` over its control protocol
-- (newline-delimited JSON on TCP, docs/PROTOCOL.md) and show its diagnostics.
--
--   require('flux').setup({ addr = '127.0.0.1:7770', token = nil })
--
-- Works with Neovim 0.7 and later; no dependencies, no `flux` binary needed.

local M = {}

local uv = vim.uv or vim.loop

M.config = {
  -- Where `flux play` listens: IP:PORT.
  addr = vim.g.flux_addr or os.getenv('FLUX_ADDR') or '127.0.0.1:7770',
  -- The secret, when `flux play` was started with --token.
  token = vim.g.flux_token or os.getenv('FLUX_TOKEN'),
  -- How long to wait for a reply, in ms.
  timeout = 10000,
  -- Also fill the quickfix list with the diagnostics.
  quickfix = true,
  -- Subscribe to the faults of the playing signals at the first send (see M.subscribe).
  subscribe = true,
}

M.ns = vim.api.nvim_create_namespace('flux')
-- Faults found while playing, and load errors of saved files, pushed by `flux play`.
M.fault_ns = vim.api.nvim_create_namespace('flux-faults')

function M.setup(opts)
  M.config = vim.tbl_extend('force', M.config, opts or {})
end

local function message(text, level)
  vim.notify(text, level or vim.log.levels.INFO, { title = 'flux' })
end

-- Sends one request and waits for its reply. Returns the reply table, or nil and an error.
function M.request(req)
  local host, port = M.config.addr:match('^%[?(.-)%]?:(%d+)$')
  if not host then
    return nil, 'flux: the address must be IP:PORT, not ' .. M.config.addr
  end
  req = vim.deepcopy(req)
  req.token = M.config.token
  local client = uv.new_tcp()
  local chunks, done, err = {}, false, nil
  client:connect(host, tonumber(port), function(cerr)
    if cerr then
      err = 'cannot connect to ' .. M.config.addr .. ' (is `flux play` running?): ' .. cerr
      done = true
      return
    end
    client:write(vim.json.encode(req) .. '\n')
    client:read_start(function(rerr, data)
      if rerr then
        err = rerr
        done = true
      elseif data == nil then
        done = true
      else
        chunks[#chunks + 1] = data
        if data:find('\n') then
          done = true
        end
      end
    end)
  end)
  local finished = vim.wait(M.config.timeout, function() return done end, 5)
  if not client:is_closing() then
    client:close()
  end
  if not finished then
    return nil, 'no reply from ' .. M.config.addr .. ' in ' .. M.config.timeout .. ' ms'
  end
  if err then
    return nil, err
  end
  local line = table.concat(chunks):match('^[^\n]*')
  local ok, reply = pcall(vim.json.decode, line)
  if not ok or type(reply) ~= 'table' then
    return nil, 'cannot read the reply: ' .. line
  end
  return reply
end

-- Pushed diagnostics by buffer: { [bufnr] = { [signal id, or '' for a load error] = diagnostic } }.
local pushed = {}

-- The loaded buffer whose file is `file` (as the engine names it: relative or absolute).
local function buffer_of(file)
  if type(file) ~= 'string' then
    return nil
  end
  local full = vim.fn.fnamemodify(file, ':p')
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    local name = vim.api.nvim_buf_get_name(b)
    if vim.api.nvim_buf_is_loaded(b) and name ~= '' and (name == full or name == file
        or vim.fn.fnamemodify(name, ':.') == file) then
      return b
    end
  end
  return nil
end

local function show_pushed(bufnr)
  local diags = {}
  for _, d in pairs(pushed[bufnr] or {}) do
    diags[#diags + 1] = d
  end
  vim.diagnostic.set(M.fault_ns, bufnr, diags)
end

-- Whether the reply of a send already shows this diagnostic in bufnr.
local function shown(bufnr, d)
  for _, old in ipairs(vim.diagnostic.get(bufnr, { namespace = M.ns })) do
    if old.lnum == d.lnum and old.col == d.col and old.message == d.message then
      return true
    end
  end
  return false
end

-- One pushed event: a fault (shown at its line), a load error, or a signal loaded again
-- (its fault goes, and the load error of its file).
function M.on_event(ev)
  if ev.event == 'fault' or ev.event == 'error' then
    local bufnr = buffer_of(ev.file)
    if not bufnr or type(ev.line) ~= 'number' then
      return
    end
    local d = {
      lnum = ev.line - 1,
      col = math.max((tonumber(ev.col) or 1) - 1, 0),
      message = ev.message,
      severity = vim.diagnostic.severity.ERROR,
      source = 'flux',
    }
    if ev.event == 'fault' then
      d.message = ev.message .. " (signal '" .. ev.id .. "' silenced)"
    elseif shown(bufnr, d) then
      return
    end
    pushed[bufnr] = pushed[bufnr] or {}
    pushed[bufnr][ev.event == 'fault' and ev.id or ''] = d
    show_pushed(bufnr)
  elseif ev.event == 'cleared' then
    local home = buffer_of(ev.file)
    for bufnr, faults in pairs(pushed) do
      if faults[ev.id] or (bufnr == home and faults['']) then
        faults[ev.id] = nil
        if bufnr == home then
          faults[''] = nil
        end
        if vim.api.nvim_buf_is_valid(bufnr) then
          show_pushed(bufnr)
        end
      end
    end
  end
end

-- Subscribes to the faults of the playing signals: they show as diagnostics (namespace
-- `flux-faults`) at their lines, and go when the signal is sent again without an error.
-- The connection stays open; once it closes (`flux play` ended), the next send opens it
-- again.
function M.subscribe()
  if M.subscription then
    return true
  end
  local host, port = M.config.addr:match('^%[?(.-)%]?:(%d+)$')
  if not host then
    return false
  end
  local client = uv.new_tcp()
  M.subscription = client
  local rest, first = '', true
  local function close()
    if M.subscription == client then
      M.subscription = nil
      M.subscribed = false
    end
    if not client:is_closing() then
      client:close()
    end
  end
  client:connect(host, tonumber(port), function(cerr)
    if cerr then
      close()
      return
    end
    client:write(vim.json.encode({ op = 'subscribe', events = { 'faults' }, token = M.config.token }) .. '\n')
    client:read_start(function(rerr, data)
      if rerr or data == nil then
        close()
        return
      end
      rest = rest .. data
      while true do
        local line, after = rest:match('^([^\n]*)\n(.*)$')
        if not line then
          break
        end
        rest = after
        local ok, ev = pcall(vim.json.decode, line)
        if first then
          first = false
          if not ok or type(ev) ~= 'table' or not ev.ok then
            close()
            return
          end
          -- The engine has taken the subscription: faults from now on come here.
          M.subscribed = true
        elseif ok and type(ev) == 'table' then
          vim.schedule(function() M.on_event(ev) end)
        end
      end
    end)
  end)
  return true
end

-- Diagnostics of a reply into vim.diagnostic (and the quickfix list); their lines are the
-- buffer's already (the request said where the code starts).
local function show_diagnostics(bufnr, reply)
  local diags, items = {}, {}
  local diagnostics = reply.diagnostics
  if type(diagnostics) ~= 'table' then
    diagnostics = {}
  end
  for _, d in ipairs(diagnostics) do
    local lnum = d.line
    diags[#diags + 1] = {
      lnum = lnum - 1,
      col = math.max(d.col - 1, 0),
      message = d.message,
      severity = vim.diagnostic.severity.ERROR,
      source = 'flux',
    }
    items[#items + 1] = { bufnr = bufnr, lnum = lnum, col = d.col, text = d.message, type = 'E' }
  end
  vim.diagnostic.set(M.ns, bufnr, diags)
  -- The reply supersedes a pushed load error.
  if pushed[bufnr] and pushed[bufnr][''] then
    pushed[bufnr][''] = nil
    show_pushed(bufnr)
  end
  if M.config.quickfix then
    vim.fn.setqflist({}, 'r', { title = 'flux', items = items })
  end
end

-- Sends lines first..last (1-based, inclusive) of buffer bufnr. Returns the reply (or nil
-- and an error) after showing it.
function M.send_lines(bufnr, first, last)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if M.config.subscribe then
    M.subscribe()
  end
  local lines = vim.api.nvim_buf_get_lines(bufnr, first - 1, last, false)
  local name = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ':.')
  if name == '' then
    name = 'nvim.js'
  end
  local reply, err = M.request({
    op = 'eval',
    name = name,
    line = first,
    code = table.concat(lines, '\n') .. '\n',
  })
  if not reply then
    message('flux: ' .. err, vim.log.levels.ERROR)
    return nil, err
  end
  show_diagnostics(bufnr, reply)
  if reply.ok then
    message(reply.message or 'flux: ok')
  elseif reply.diagnostics and #reply.diagnostics > 0 then
    local d = reply.diagnostics[1]
    message(string.format('%s:%d:%d: %s', d.file, d.line, d.col, d.message), vim.log.levels.ERROR)
  else
    message('flux: ' .. tostring(reply.error), vim.log.levels.ERROR)
  end
  return reply
end

-- The paragraph around the cursor: the lines between blank lines.
function M.paragraph()
  local cur = vim.api.nvim_win_get_cursor(0)[1]
  local count = vim.api.nvim_buf_line_count(0)
  local function blank(l)
    return vim.fn.getline(l):match('^%s*$') ~= nil
  end
  local first, last = cur, cur
  while first > 1 and not blank(first - 1) do
    first = first - 1
  end
  while last < count and not blank(last + 1) do
    last = last + 1
  end
  return first, last
end

function M.send_paragraph()
  local first, last = M.paragraph()
  return M.send_lines(0, first, last)
end

function M.send_selection()
  local first, last = vim.fn.line("'<"), vim.fn.line("'>")
  return M.send_lines(0, first, last)
end

function M.send_file()
  return M.send_lines(0, 1, vim.api.nvim_buf_line_count(0))
end

-- A control request (`mute`, `list`, ...), its result echoed.
function M.control(req)
  local reply, err = M.request(req)
  if not reply then
    message('flux: ' .. err, vim.log.levels.ERROR)
  elseif not reply.ok then
    message('flux: ' .. tostring(reply.error), vim.log.levels.ERROR)
  elseif reply.status and reply.status ~= vim.NIL then
    local s = reply.status
    message(string.format('flux: %d signals, %d underruns, DSP load %.1f%% (max %.1f%%), %d reloads',
      s.signals, s.underruns, s.dsp_load_last * 100, s.dsp_load_max * 100, s.reloads))
  else
    local parts = {}
    for _, s in ipairs(reply.signals or {}) do
      parts[#parts + 1] = s.id .. ' (' .. s.tier .. (s.muted and ', muted' or '') .. ')'
    end
    message('flux: ' .. (reply.message or 'playing') .. ': ' .. table.concat(parts, ', '))
  end
  return reply
end

return M
