// A minimal FIX 4.4 acceptor on QuickFIX, the peer the latency harness measures our venue
// against (`exchange bench e2e --transport tcp --peer quickfix`). It does what QuickFIX's own
// executor example does and nothing more: every NewOrderSingle is acknowledged with an
// ExecutionReport 150=0 (New) and every OrderCancelRequest with an ExecutionReport 150=4
// (Canceled). No book, no risk checks, no journal: the figures beside ours say so.
//
// Usage: quickfix-acceptor CONFIG PORT. CONFIG is the settings file build.sh generates (one
// session per account); PORT overrides its SocketAcceptPort, so the harness picks the port.
// Prints "listening on PORT" once the acceptor is up, and runs until stdin closes.

#include <quickfix/Application.h>
#include <quickfix/MessageStore.h>
#include <quickfix/MessageCracker.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>
#include <quickfix/fix44/ExecutionReport.h>
#include <quickfix/fix44/NewOrderSingle.h>
#include <quickfix/fix44/OrderCancelRequest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <iostream>
#include <string>

namespace {

class Executor : public FIX::Application, public FIX::MessageCracker {
 public:
  void onCreate(const FIX::SessionID&) override {}
  void onLogon(const FIX::SessionID&) override {}
  void onLogout(const FIX::SessionID&) override {}
  void toAdmin(FIX::Message&, const FIX::SessionID&) override {}
  void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) override {}
  void fromAdmin(const FIX::Message&, const FIX::SessionID&)
      throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::RejectLogon) override {}
  void fromApp(const FIX::Message& message, const FIX::SessionID& session)
      throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue,
             FIX::UnsupportedMessageType) override {
    crack(message, session);
  }

  void onMessage(const FIX44::NewOrderSingle& order, const FIX::SessionID& session) override {
    FIX::ClOrdID cl_ord_id;
    FIX::Symbol symbol;
    FIX::Side side;
    FIX::OrderQty qty;
    order.get(cl_ord_id);
    order.get(symbol);
    order.get(side);
    order.get(qty);
    FIX::OrderID order_id(next_id());
    FIX::ExecID exec_id(next_id());
    FIX44::ExecutionReport report(order_id, exec_id, FIX::ExecType(FIX::ExecType_NEW),
                                  FIX::OrdStatus(FIX::OrdStatus_NEW), side, FIX::LeavesQty(qty.getValue()),
                                  FIX::CumQty(0), FIX::AvgPx(0));
    report.set(cl_ord_id);
    report.set(symbol);
    report.set(qty);
    FIX::Session::sendToTarget(report, session);
  }

  void onMessage(const FIX44::OrderCancelRequest& cancel, const FIX::SessionID& session) override {
    FIX::OrigClOrdID orig;
    FIX::ClOrdID cl_ord_id;
    FIX::Symbol symbol;
    FIX::Side side;
    cancel.get(orig);
    cancel.get(cl_ord_id);
    cancel.get(symbol);
    cancel.get(side);
    FIX::OrderID order_id(next_id());
    FIX::ExecID exec_id(next_id());
    FIX44::ExecutionReport report(order_id, exec_id,
                                  FIX::ExecType(FIX::ExecType_CANCELED), FIX::OrdStatus(FIX::OrdStatus_CANCELED), side,
                                  FIX::LeavesQty(0), FIX::CumQty(0), FIX::AvgPx(0));
    report.set(orig);
    report.set(cl_ord_id);
    report.set(symbol);
    FIX::Session::sendToTarget(report, session);
  }

 private:
  std::string next_id() { return std::to_string(++ids_); }
  unsigned long long ids_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " CONFIG PORT\n";
    return 2;
  }
  try {
    // Every session's dictionary is merged with [DEFAULT] when the file is parsed, so the port
    // is put into the text before parsing rather than into the parsed defaults.
    std::ifstream file(argv[1]);
    if (!file) {
      std::cerr << "quickfix-acceptor: cannot read " << argv[1] << "\n";
      return 1;
    }
    std::stringstream text;
    text << file.rdbuf();
    std::string config = text.str();
    const std::string key = "SocketAcceptPort=0";
    const auto at = config.find(key);
    if (at == std::string::npos) {
      std::cerr << "quickfix-acceptor: " << argv[1] << " has no " << key << " line to override\n";
      return 1;
    }
    config.replace(at, key.size(), std::string("SocketAcceptPort=") + argv[2]);
    std::istringstream in(config);
    FIX::SessionSettings settings(in);
    Executor executor;
    FIX::MemoryStoreFactory store;
    FIX::SocketAcceptor acceptor(executor, store, settings);
    acceptor.start();
    std::cout << "listening on " << argv[2] << std::endl;
    // Runs until the harness closes our stdin (or dies).
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    acceptor.stop();
  } catch (const std::exception& e) {
    std::cerr << "quickfix-acceptor: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
