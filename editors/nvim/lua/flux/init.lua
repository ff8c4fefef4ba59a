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
}

M.ns = vim.api.nvim_create_namespace('flux')

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
  if M.config.quickfix then
    vim.fn.setqflist({}, 'r', { title = 'flux', items = items })
  end
end

-- Sends lines first..last (1-based, inclusive) of buffer bufnr. Returns the reply (or nil
-- and an error) after showing it.
function M.send_lines(bufnr, first, last)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
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
