%%% The protocol 2 channel (subsystem NAME-v2) of the cluster server, as
%%% specified in asn1/Protocol.asn1 and docs/protocol.md.
%%%
%%% open {stream} is answered with opened {lastSeq}; every submit/account
%%% with exactly one result, in order. Everything already received (the
%%% data messages waiting in the mailbox, as in game_channel) is one
%%% mnesia transaction (game_db:apply_v2/4): the results are sent only
%%% after it committed. A seq not greater than the previous one on this
%%% channel, a message that is not a ClientMessage, a second open or a
%%% request before open is a protocol error: the results of what came
%%% before it are sent, then one line on the channel's stderr, then the
%%% channel is closed without exit-status.
%%%
%%% Fault knobs (game_server --fault), for the exactly-once tests:
%%%   {drop_before_result, N}  the N-th submit/account is committed, then
%%%                            the TCP connection is killed before its result
%%%   {drop_after_result, N}   the N-th result is sent, then the TCP
%%%                            connection is killed (after ?DROP_DELAY_MS)
%%%   extra_result             every result is sent twice
%%%   unknown_seq              the first result carries a seq never sent
-module(game_channel2).
-behaviour(ssh_server_channel).

-export([init/1, handle_msg/2, handle_ssh_msg/2, terminate/2]).
-export([parse_fault/1]).

-define(DROP_DELAY_MS, 200).
-define(CLOSE_WAIT_MS, 10000).
-define(MAX_SEQ, (1 bsl 63)).

-record(st, {
          fault = none,
          conn :: pid() | undefined,
          chan :: non_neg_integer() | undefined,
          id = <<>> :: binary(),                  % connection id, for diagnostics
          user = <<>> :: binary(),
          key :: binary() | undefined,            % the key whose signature was verified
          stream :: binary() | undefined,
          last = 0 :: non_neg_integer(),          % highest seq on this channel
          handled = 0 :: non_neg_integer(),       % submit/account messages committed
          results = 0 :: non_neg_integer(),       % results sent
          buf = <<>> :: binary(),
          dead = false :: boolean(),              % after a protocol error or a drop: discard input
          closing = false :: boolean()
         }).

parse_fault("none") -> none;
parse_fault("extra_result") -> extra_result;
parse_fault("unknown_seq") -> unknown_seq;
parse_fault("drop_before_result:" ++ N) -> with_count(drop_before_result, N);
parse_fault("drop_after_result:" ++ N) -> with_count(drop_after_result, N);
parse_fault(_) -> error.

with_count(Fault, N) ->
    case string:to_integer(N) of
        {I, []} when I >= 1 -> {Fault, I};
        _ -> error
    end.

%%====================================================================
%% ssh_server_channel callbacks
%%====================================================================

init([Fault]) ->
    process_flag(message_queue_data, off_heap),
    {ok, #st{fault = Fault}}.

handle_msg({ssh_channel_up, Chan, Conn}, St) ->
    case game_users:conn_info(Conn) of
        {ok, Id, User, ok, Key} ->
            game_server:info("protocol 2 channel ~b opened on connection ~s (~s)", [Chan, Id, User]),
            {ok, St#st{conn = Conn, chan = Chan, id = Id, user = User, key = Key}};
        Other ->
            game_server:info("refusing channel on unauthorised connection: ~0p", [Other]),
            {stop, Chan, St}
    end;
handle_msg(drop_now, #st{conn = Conn} = St) ->
    game_server:info("fault: killing connection ~s after ~b results", [St#st.id, St#st.results]),
    exit(Conn, kill),
    {ok, St};
handle_msg(close_timeout, #st{chan = Chan} = St) ->
    {stop, Chan, St};
handle_msg({'EXIT', _, _}, #st{chan = Chan} = St) ->
    {stop, Chan, St};
handle_msg(_Msg, St) ->
    {ok, St}.

handle_ssh_msg({ssh_cm, _, {data, Chan, _, _}}, #st{chan = Chan, dead = true} = St) ->
    {ok, St};
handle_ssh_msg({ssh_cm, _, {data, Chan, 0, Data}}, #st{chan = Chan} = St0) ->
    {Batch, Taken} = game_channel:take_waiting({St0#st.conn, Chan}, [Data], 1, byte_size(Data), 0),
    Taken > 0 andalso ssh_connection:adjust_window(St0#st.conn, Chan, Taken),
    input(iolist_to_binary([St0#st.buf | Batch]), St0);
handle_ssh_msg({ssh_cm, _, {data, Chan, _Ext, _}}, #st{chan = Chan} = St) ->
    {ok, St};
handle_ssh_msg({ssh_cm, _, {eof, Chan}}, #st{chan = Chan, dead = true} = St) ->
    {ok, St};
handle_ssh_msg({ssh_cm, _, {eof, Chan}}, #st{chan = Chan, buf = <<>>, conn = Conn} = St) ->
    %% every result is sent (input is handled as it arrives)
    ssh_connection:exit_status(Conn, Chan, 0),
    ssh_connection:send_eof(Conn, Chan),
    close_channel(St);
handle_ssh_msg({ssh_cm, _, {eof, Chan}}, #st{chan = Chan} = St) ->
    protocol_error("EOF in the middle of a message", St);
handle_ssh_msg({ssh_cm, _, {closed, Chan}}, #st{chan = Chan} = St) ->
    {stop, Chan, St};
handle_ssh_msg(_Msg, St) ->
    {ok, St}.

terminate(_Reason, _St) ->
    ok.

%%====================================================================
%% Input
%%====================================================================

%% Decodes every complete message of Buf, commits the requests among them
%% as one transaction, sends opened and the results.
input(Buf, St0) ->
    {Msgs, Rest, Error} = messages(Buf, []),
    {Opened, Ops, Error1, St} = check(Msgs, St0, none, [], Error),
    commit_and_reply(Opened, Ops, Error1, St#st{buf = Rest}).

messages(Buf, Acc) ->
    case game_proto:frame(Buf) of
        more ->
            {lists:reverse(Acc), Buf, none};
        {error, Why} ->
            {lists:reverse(Acc), <<>>, io_lib:format("bad BER framing (~p)", [Why])};
        {ok, TLV, Rest} ->
            case decode(TLV) of
                {ok, Msg} -> messages(Rest, [Msg | Acc]);
                error -> {lists:reverse(Acc), <<>>, "not a ClientMessage: " ++ hex_prefix(TLV)}
            end
    end.

decode(TLV) ->
    try 'Protocol':decode('ClientMessage', TLV) of
        {ok, {open, #{stream := S}}} when byte_size(S) =:= 16 -> {ok, {open, S}};
        {ok, {submit, #{seq := Seq, request := Req}}} ->
            case game_proto:valid_request(Req) of
                true -> {ok, {Seq, {submit, Req}}};
                false -> error
            end;
        {ok, {account, #{seq := Seq, request := Req}}} -> {ok, {Seq, {account, Req}}};
        _ -> error
    catch
        _:_ -> error
    end.

%% Applies the channel's rules in order; stops at the first violation.
check([], St, Opened, Ops, Error) ->
    {Opened, lists:reverse(Ops), Error, St};
check([{open, S} | T], #st{stream = undefined} = St, none, [], Error) ->
    check(T, St#st{stream = S}, {opened, game_db:opened(St#st.user, S)}, [], Error);
check([{open, _} | _], St, Opened, Ops, _) ->
    check([], St, Opened, Ops, "a second open on the channel");
check([_ | _], #st{stream = undefined} = St, Opened, Ops, _) ->
    check([], St, Opened, Ops, "a request before open");
check([{Seq, _} = Op | T], #st{last = Last} = St, Opened, Ops, Error)
  when is_integer(Seq), Seq > Last, Seq < ?MAX_SEQ ->
    check(T, St#st{last = Seq}, Opened, [Op | Ops], Error);
check([{Seq, _} | _], #st{last = Last} = St, Opened, Ops, _) ->
    check([], St, Opened, Ops,
          io_lib:format("seq ~b is not greater than ~b (the previous seq on this channel) "
                        "or not below 2^63", [Seq, Last])).

commit_and_reply(Opened, Ops0, Error, St0) ->
    {Ops, Fault} = cut(Ops0, St0),
    Results = case Ops of
                  [] -> [];
                  _ -> game_db:apply_v2(St0#st.user, St0#st.key, St0#st.stream, Ops)
              end,
    St = St0#st{handled = St0#st.handled + length(Ops)},
    case Fault of
        drop_before ->
            send(St, [Opened | lists:droplast(Results)]),
            exit(St#st.conn, kill),
            {ok, St#st{dead = true}};
        drop_after ->
            St1 = send(St, [Opened | Results]),
            erlang:send_after(?DROP_DELAY_MS, self(), drop_now),
            {ok, St1#st{dead = true}};
        none when Error =:= none ->
            {ok, send(St, [Opened | Results])};
        none ->
            protocol_error(Error, send(St, [Opened | Results]))
    end.

%% The requests to commit now, cut at a drop fault's N-th request.
cut(Ops, #st{fault = {Kind, N}, handled = H}) when H < N, H + length(Ops) >= N ->
    {lists:sublist(Ops, N - H), case Kind of
                                    drop_before_result -> drop_before;
                                    drop_after_result -> drop_after
                                end};
cut(Ops, _St) ->
    {Ops, none}.

%%====================================================================
%% Output
%%====================================================================

send(St, Msgs0) ->
    {Bins, St1} = lists:mapfoldl(fun encode/2, St, [M || M <- Msgs0, M =/= none]),
    case Bins of
        [] -> ok;
        _ -> ok = ssh_connection:send(St#st.conn, St#st.chan, iolist_to_binary(Bins))
    end,
    St1.

encode({opened, Last}, St) ->
    {server_message({opened, #{lastSeq => Last}}), St};
encode({Seq0, Outcome}, #st{fault = Fault, results = N} = St) ->
    Seq = case {Fault, N} of
              {unknown_seq, 0} -> Seq0 + (1 bsl 62);
              _ -> Seq0
          end,
    Bin = server_message({result, #{seq => Seq, outcome => outcome(Outcome)}}),
    {case Fault of
         extra_result -> [Bin, Bin];
         _ -> Bin
     end, St#st{results = N + 1}}.

outcome(accepted) -> {accepted, 'NULL'};
outcome(duplicate) -> {duplicate, 'NULL'};
outcome({rejected, R}) -> {rejected, #{reason => R}};
outcome({keys, Ks}) -> {keys, [#{key => K, label => L, current => C} || {K, L, C} <- Ks]}.

server_message(M) ->
    {ok, Bin} = 'Protocol':encode('ServerMessage', M),
    Bin.

protocol_error(What, #st{conn = Conn, chan = Chan} = St) ->
    Line = iolist_to_binary(["protocol error: ", What, "\n"]),
    game_server:info("connection ~s: ~s", [St#st.id, string:trim(Line)]),
    ssh_connection:send(Conn, Chan, 1, Line),
    close_channel(St#st{dead = true, buf = <<>>}).

%% As in game_channel: we send CHANNEL_CLOSE and wait for the client's.
close_channel(#st{closing = true} = St) ->
    {ok, St};
close_channel(#st{conn = Conn, chan = Chan} = St) ->
    ok = ssh_connection:close(Conn, Chan),
    erlang:send_after(?CLOSE_WAIT_MS, self(), close_timeout),
    {ok, St#st{closing = true, dead = true}}.

hex_prefix(Bin) ->
    binary_to_list(game_proto:hex(binary:part(Bin, 0, min(16, byte_size(Bin))))).
