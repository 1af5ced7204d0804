%%% The `game` subsystem channel of the reference server.
%%%
%%% One module for all test modes. A mode is turned into a small behaviour
%%% spec by spec/1 (how input is framed, what is replied, how replies are
%%% paced, what the client's EOF does, what happens after N requests); the
%%% rest of the module only looks at the spec, never at the mode name.
%%%
%%% Batching: when a data message arrives, the data messages already
%%% waiting behind it in the mailbox (up to ?BATCH_MSGS / ?BATCH_BYTES) are
%%% taken too and handled as one batch: their log lines are written with one
%%% write call, then their replies are sent with one ssh_connection:send
%%% call. A lone message is answered at once. Log lines are always written
%%% before the replies they belong to are sent.
%%%
%%% Flow control: ssh_server_channel (i.e. ssh_client_channel in OTP 25)
%%% itself calls ssh_connection:adjust_window/3 for the data message passed
%%% to handle_ssh_msg/2 once that returned {ok, _}. Calling it here for the
%%% same message would grant the window twice and effectively switch flow
%%% control off; the channel only adjusts (once per batch) for the messages
%%% it took from the mailbox itself. That also saves the connection process
%%% one cast per tiny message, which matters: OTP 25's connection process
%%% slows down badly once its mailbox is long. The only way to *not* read
%%% (modes stall, pause:N) is not to return to the behaviour loop: the
%%% channel then blocks in a selective receive.
%%%
%%% Closing: when the channel process ends, OTP 25's connection handler
%%% forgets the channel at once; a CHANNEL_WINDOW_ADJUST the client sends
%%% afterwards (it still acknowledges the replies it consumed) then crashes
%%% the whole connection ("Internal error: error:{badmatch,undefined}").
%%% So the channel sends CHANNEL_CLOSE itself and stays alive until the
%%% client's CHANNEL_CLOSE arrives (or ?CLOSE_WAIT_MS passed).
-module(game_channel).
-behaviour(ssh_server_channel).

-export([init/1, handle_msg/2, handle_ssh_msg/2, terminate/2]).
-export([parse_mode/1, spec/1, take_waiting/5]).

-define(GARBAGE, <<16#ff, 16#ff, 16#ff, 16#ff>>).
%% A Response header claiming a 0x7fffffff byte (~2 GB) body, plus a few bytes.
-define(HUGE, <<16#a0, 16#84, 16#7f, 16#ff, 16#ff, 16#ff, 16#30, 16#00, 16#05, 16#00>>).
%% drop:N waits this long after the N-th acknowledgement before killing the
%% TCP connection, so the acknowledgements reach the client first.
-define(DROP_DELAY_MS, 200).
-define(CLOSE_WAIT_MS, 10000).
-define(BATCH_MSGS, 4096).
-define(BATCH_BYTES, 262144).

-record(st, {
          spec :: map(),
          log_fd,
          conn :: pid() | undefined,
          chan :: non_neg_integer() | undefined,
          prefix = [] :: iodata(),      % <<"conn-id\tuser\t">>
          user = <<>> :: binary(),
          buf = <<>> :: binary(),
          handled = 0 :: non_neg_integer(), % requests logged (and answered)
          eof = false :: boolean(),
          %% once set, further input is discarded (window still adjusted):
          %% after a malformed PDU, or once drop:N has been triggered.
          broken = false :: false | malformed | limit,
          %% collected, not yet flushed (lists in reverse order):
          pend_log = [] :: [iodata()],
          pend_outcomes = [] :: [game_proto:outcome()],   % stored by mode cluster
          pend_replies = [] :: [binary()],
          queue = queue:new(),          % paced replies not yet sent
          timer = undefined,
          closing = false :: boolean(),        % our CHANNEL_CLOSE is sent
          closed_logged = false :: boolean()
         }).

%%====================================================================
%% Modes
%%====================================================================

parse_mode("seed") -> seed;
parse_mode("ack") -> ack;
parse_mode("silent") -> silent;
parse_mode("stall") -> stall;
parse_mode("slow") -> slow;
parse_mode("garbage") -> garbage;
parse_mode("huge") -> huge;
parse_mode("extra") -> extra;
parse_mode("refuse") -> refuse;
parse_mode("drop:" ++ N) -> with_count(drop, N);
parse_mode("pause:" ++ N) -> with_count(pause, N);
parse_mode(_) -> error.

with_count(Mode, N) ->
    case string:to_integer(N) of
        {I, []} when I >= 0 -> {Mode, I};
        _ -> error
    end.

%% framing: none    - never read: the channel blocks, the window stays shut
%%          message - every data message is exactly one PDU
%%          stream  - BER byte stream, PDUs may span / share messages
%% reply:   none | normal | double | garbage | huge   (garbage/huge: first only)
%% pace:    milliseconds between replies (0 = send at once, batched)
%% on_eof:  close_quietly - close at once, no exit-status (original server)
%%          close         - close after all replies, exit-status 0 first
%%          ignore        - never close
%% store:   log - requests.log only; mnesia - also committed to game_db
%%          before the replies are sent (the cluster)
%% limit:   after this many answered requests (infinity: never) ...
%% at_limit: drop  - ... kill the TCP connection (no SSH close at all)
%%           pause - ... stop reading and answering; never close
spec(Mode) ->
    Base = #{framing => stream, reply => normal, pace => 0, store => log,
             on_eof => close, limit => infinity, at_limit => drop},
    maps:merge(Base, overrides(Mode)).

overrides(seed)      -> #{framing => message, reply => none, on_eof => close_quietly};
overrides(ack)       -> #{};
overrides(cluster)   -> #{store => mnesia};
overrides(silent)    -> #{reply => none, on_eof => ignore};
overrides(stall)     -> #{framing => none, reply => none, on_eof => ignore};
overrides(slow)      -> #{pace => 500};
overrides({drop, N}) -> #{limit => N, at_limit => drop};
overrides({pause, N}) -> #{limit => N, at_limit => pause};
overrides(garbage)   -> #{reply => garbage, on_eof => ignore};
overrides(huge)      -> #{reply => huge, on_eof => ignore};
overrides(extra)     -> #{reply => double}.

%%====================================================================
%% ssh_server_channel callbacks
%%====================================================================

init([Mode, StateDir]) ->
    %% A fast client can queue many thousands of data messages; keep them
    %% off the heap so garbage collections don't copy them over and over.
    process_flag(message_queue_data, off_heap),
    {ok, Fd} = file:open(filename:join(StateDir, "requests.log"), [append, raw, binary]),
    {ok, #st{spec = spec(Mode), log_fd = Fd}}.

handle_msg({ssh_channel_up, Chan, Conn}, St0) ->
    St = St0#st{conn = Conn, chan = Chan},
    case game_users:conn_info(Conn) of
        {ok, Id, User, ok, _Key} ->
            Prefix = iolist_to_binary([Id, $\t, User, $\t]),
            write_log(St, [event(connect, Prefix)]),
            game_server:info("channel ~b opened on connection ~s (~s)", [Chan, Id, User]),
            case St of
                #st{spec = #{framing := none}} -> stall(St#st{prefix = Prefix, user = User});
                _ -> {ok, St#st{prefix = Prefix, user = User}}
            end;
        Other ->
            game_server:info("refusing channel on unauthorised connection: ~0p", [Other]),
            {stop, Chan, St}
    end;
handle_msg(send_next, St0) ->
    #st{queue = Q0} = St1 = flush(St0#st{timer = undefined}),
    St = case queue:out(Q0) of
             {{value, Bin}, Q} ->
                 send(St1, Bin),
                 schedule(St1#st{queue = Q});
             {empty, _} ->
                 St1
         end,
    maybe_close(St);
handle_msg(drop_now, #st{conn = Conn} = St0) ->
    St = flush(St0),
    write_log(St, [event(dropped, St#st.prefix)]),
    game_server:info("drop: killing connection ~0p", [Conn]),
    exit(Conn, kill),
    {ok, St};
handle_msg(close_timeout, St) ->
    stop(St);
handle_msg({'EXIT', _, _}, St) ->
    %% e.g. shutdown by the supervisor when the connection ends
    stop(flush(St));
handle_msg(_Msg, St) ->
    {ok, St}.

handle_ssh_msg({ssh_cm, _, {data, Chan, _, _}}, #st{chan = Chan, closing = true} = St) ->
    {ok, St};
handle_ssh_msg({ssh_cm, _, {data, Chan, 0, Data}}, #st{chan = Chan} = St) ->
    data(Data, St);
handle_ssh_msg({ssh_cm, _, {data, Chan, _Ext, _Data}}, #st{chan = Chan} = St) ->
    %% extended data (stderr) from the client: not part of the protocol
    {ok, St};
handle_ssh_msg({ssh_cm, _, {eof, Chan}}, #st{chan = Chan} = St0) ->
    St = flush(St0),
    write_log(St, [event(eof, St#st.prefix)]),
    case St#st.closing of
        true -> {ok, St};
        false -> eof(St#st{eof = true})
    end;
handle_ssh_msg({ssh_cm, _, {closed, Chan}}, #st{chan = Chan} = St) ->
    stop(flush(St));
handle_ssh_msg(_Msg, St) ->
    {ok, St}.

terminate(_Reason, #st{log_fd = Fd, pend_log = Pending} = St) ->
    %% too late for replies, but not for the log
    write_log(St, lists:reverse(Pending)),
    log_closed(St),
    file:close(Fd),
    ok.

%% We close the channel: `closed` is logged before CHANNEL_CLOSE is sent,
%% so it is in the log when the client sees the close. The process stays
%% until the client's CHANNEL_CLOSE (see the module doc).
close_channel(#st{closing = true} = St) ->
    {ok, St};
close_channel(#st{conn = Conn, chan = Chan} = St0) ->
    St = log_closed(St0),
    ok = ssh_connection:close(Conn, Chan),
    erlang:send_after(?CLOSE_WAIT_MS, self(), close_timeout),
    {ok, St#st{closing = true}}.

%% The channel process ends now.
stop(#st{chan = Chan} = St) ->
    {stop, Chan, log_closed(St)}.

log_closed(#st{closed_logged = false, prefix = <<_/binary>> = Prefix} = St) ->
    write_log(St, [event(closed, Prefix)]),
    [Id, User | _] = binary:split(Prefix, <<"\t">>, [global]),
    game_server:info("channel ~b closed on connection ~s (~s)", [St#st.chan, Id, User]),
    St#st{closed_logged = true};
log_closed(St) ->
    St.

%%====================================================================
%% Input
%%====================================================================

data(_Data, #st{spec = #{framing := none}} = St) ->
    {ok, St};                                   % not reached: see stall/1
data(Data, St0) ->
    {Batch, Taken} = take_waiting({St0#st.conn, St0#st.chan}, [Data], 1, byte_size(Data), 0),
    St = flush(input(Batch, St0)),
    Taken > 0 andalso ssh_connection:adjust_window(St#st.conn, St#st.chan, Taken),
    case St#st.spec of
        #{framing := stream} -> after_input(St);
        _ -> {ok, St}
    end.

%% The data messages already waiting in the mailbox (oldest first), and
%% the number of their bytes (the first message is not ours to adjust).
%% Also used by game_channel2.
take_waiting({Conn, Chan} = Ch, Acc, N, Bytes, Taken)
  when N < ?BATCH_MSGS, Bytes < ?BATCH_BYTES ->
    receive
        {ssh_cm, Conn, {data, Chan, 0, D}} ->
            Size = byte_size(D),
            take_waiting(Ch, [D | Acc], N + 1, Bytes + Size, Taken + Size)
    after 0 ->
            {lists:reverse(Acc), Taken}
    end;
take_waiting(_Ch, Acc, _N, _Bytes, Taken) ->
    {lists:reverse(Acc), Taken}.

input(_Batch, #st{broken = Broken} = St) when Broken =/= false ->
    St;                                         % discarded
input(Batch, #st{spec = #{framing := message}} = St) ->
    lists:foldl(fun(Data, Acc) ->
                        Event = case game_proto:frame(Data) of
                                    {ok, TLV, <<>>} -> request_event(TLV);
                                    _ -> {malformed, Data}
                                end,
                        handled(Event, Acc)
                end, St, Batch);
input(Batch, #st{spec = #{framing := stream}, buf = Buf} = St) ->
    consume(iolist_to_binary([Buf | Batch]), St).

%% stall (and pause:N once N requests are answered): never return to the
%% ssh_server_channel loop (which would read the queued data and adjust
%% the window); only end when the channel or the connection does.
stall(#st{conn = Conn, chan = Chan} = St) ->
    receive
        {ssh_cm, Conn, {closed, Chan}} -> stop(St);
        {'EXIT', _, _} -> stop(St)
    end.

%% Handles all complete PDUs in Buf; keeps the incomplete rest.
consume(_Buf, #st{spec = #{limit := N}, handled = H} = St) when H >= N ->
    %% drop:N / pause:N reached: the rest is neither logged nor answered
    St#st{buf = <<>>};
consume(Buf, St) ->
    case game_proto:frame(Buf) of
        more ->
            St#st{buf = Buf};
        {ok, TLV, Rest} ->
            case handled(request_event(TLV), St) of
                #st{broken = false} = St1 -> consume(Rest, St1);
                St1 -> St1#st{buf = <<>>}
            end;
        {error, _Why} ->
            (handled({malformed, Buf}, St))#st{buf = <<>>}
    end.

request_event(TLV) ->
    case game_proto:decode_request(TLV) of
        {ok, Req} -> game_proto:classify(Req);
        error -> {malformed, TLV}
    end.

%% Collects the log line and the replies for one request.
handled(Event, #st{pend_log = Log, pend_replies = Rs, handled = H, prefix = Prefix} = St) ->
    Replies = replies(Event, St),
    St1 = St#st{pend_log = [line(Event, Prefix) | Log],
                pend_outcomes = [Event | St#st.pend_outcomes],
                pend_replies = lists:reverse(Replies, Rs),
                handled = H + 1},
    case Event of
        {malformed, _} when map_get(framing, St#st.spec) =:= stream ->
            St1#st{broken = malformed};
        _ ->
            St1
    end.

eof(#st{spec = #{on_eof := ignore}} = St) ->
    {ok, St};
eof(#st{spec = #{on_eof := close_quietly}} = St) ->
    close_channel(St);
eof(#st{broken = limit} = St) ->
    {ok, St};                                   % drop:N: the drop timer ends it
eof(#st{buf = <<>>} = St) ->
    maybe_close(St);
eof(#st{buf = Partial} = St) ->
    %% EOF in the middle of a PDU
    maybe_close(flush((handled({malformed, Partial}, St))#st{buf = <<>>})).

%%====================================================================
%% Output
%%====================================================================

replies(Event, #st{spec = #{reply := Kind}, handled = H}) ->
    case {Kind, H} of
        {none, _} -> [];
        {normal, _} -> [game_proto:response(Event)];
        {double, _} -> R = game_proto:response(Event), [R, R];
        {garbage, 0} -> [?GARBAGE];
        {huge, 0} -> [?HUGE];
        {_, _} -> []
    end.

%% Log lines (and mode cluster's commit) first, then the replies.
flush(#st{pend_log = Log, pend_replies = Rs, pend_outcomes = Os} = St0) ->
    write_log(St0, lists:reverse(Log)),
    case St0#st.spec of
        #{store := mnesia} -> game_db:apply_v1(St0#st.user, lists:reverse(Os));
        _ -> ok
    end,
    St = St0#st{pend_log = [], pend_replies = [], pend_outcomes = []},
    deliver(St, lists:reverse(Rs)).

deliver(St, []) ->
    St;
deliver(#st{spec = #{pace := 0}} = St, Replies) ->
    send(St, Replies),
    St;
deliver(#st{queue = Q} = St, Replies) ->
    schedule(St#st{queue = queue:join(Q, queue:from_list(Replies))}).

schedule(#st{timer = undefined, queue = Q, spec = #{pace := Ms}} = St) ->
    case queue:is_empty(Q) of
        true -> St;
        false -> St#st{timer = erlang:send_after(Ms, self(), send_next)}
    end;
schedule(St) ->
    St.

send(#st{conn = Conn, chan = Chan}, Data) ->
    ok = ssh_connection:send(Conn, Chan, iolist_to_binary(Data)).

%% After input has been handled: act on drop:N / pause:N, close after a
%% malformed PDU (in modes that close at all), or close once EOF was seen.
after_input(#st{broken = false, spec = #{limit := N, at_limit := drop},
                handled = H} = St0) when H >= N ->
    St = flush(St0),
    erlang:send_after(?DROP_DELAY_MS, self(), drop_now),
    {ok, St#st{broken = limit, buf = <<>>}};
after_input(#st{broken = false, spec = #{limit := N, at_limit := pause},
                handled = H} = St0) when H >= N ->
    St = flush(St0),
    write_log(St, [event(paused, St#st.prefix)]),
    game_server:info("pause: channel ~b stops reading after ~b requests", [St#st.chan, H]),
    stall(St#st{broken = limit, buf = <<>>});
after_input(St) ->
    maybe_close(St).

maybe_close(#st{spec = #{on_eof := ignore}} = St) ->
    {ok, St};
maybe_close(#st{closing = true} = St) ->
    {ok, St};
maybe_close(#st{broken = limit} = St) ->
    {ok, St};
maybe_close(#st{eof = Eof, broken = Broken, pend_replies = Rs, queue = Q,
                chan = Chan, conn = Conn} = St)
  when Eof; Broken =:= malformed ->
    case Rs =:= [] andalso queue:is_empty(Q) of
        false ->
            {ok, St};
        true ->
            case Broken of
                malformed -> ok;
                false -> ssh_connection:exit_status(Conn, Chan, 0)
            end,
            close_channel(St)
    end;
maybe_close(St) ->
    {ok, St}.

%%====================================================================
%% Log
%%====================================================================

write_log(_St, []) ->
    ok;
write_log(#st{log_fd = Fd}, Lines) ->
    ok = file:write(Fd, Lines).

event(Name, Prefix) ->
    %% Prefix ends with a tab
    [atom_to_binary(Name), $\t, binary:part(Prefix, 0, byte_size(Prefix) - 1), $\n].

line({set_username, Name}, Prefix) ->
    ["setUsername\t", Prefix, game_proto:hex(Name), $\n];
line({add_score, V}, Prefix) ->
    ["addScore\t", Prefix, integer_to_binary(V), $\n];
line({rejected, Reason}, Prefix) ->
    ["rejected\t", Prefix, Reason, $\n];
line({malformed, Bytes}, Prefix) ->
    ["malformed\t", Prefix, game_proto:hex(Bytes), $\n].
